// Package mapping turns domain events into graph writes with declarative
// rules (docs/mapping.md): a rule is selected by the source topic or by a
// condition over the event, and produces one write whose key, ids, labels
// and property values are expressions (github.com/expr-lang/expr) over the
// event, with iteration over arrays and conditions.
//
// Rules are compiled at load time; errors name the file, the rule and the
// field. At run time, an event no rule matches is unmapped (a dead letter
// with class "unmapped", or skipped), and a rule that fails on an event
// names itself, the field and the reason.
package mapping

import (
	"regexp"

	"github.com/expr-lang/expr/vm"

	"github.com/graftdb/graft"
)

// Mapper holds compiled rules.
type Mapper struct {
	rules       []*rule
	skip        bool // unmapped events are skipped, not dead-lettered
	topicPrefix string
}

type rule struct {
	name  string
	topic *regexp.Regexp
	when  *vm.Program
	key   *vm.Program
	id    *vm.Program
	ops   []*opSpec
}

// opSpec is one op of a rule, or a block iterating over a list.
type opSpec struct {
	path string // "ops[1].for.ops[0]", for errors
	kind graft.OpKind
	cond *vm.Program // if:

	// for blocks
	each *vm.Program
	as   string
	ops  []*opSpec

	id, label, from, to, targets, keys *vm.Program
	props                              []propSpec
}

type propSpec struct {
	name string
	val  *vm.Program
}

// ErrUnmapped is the cause of an event no rule matches.
var ErrUnmapped = graft.ErrUnmapped

// TopicPrefix is where the router publishes a rule's writes: prefix + rule name.
func (m *Mapper) TopicPrefix() string { return m.topicPrefix }
