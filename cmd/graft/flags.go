package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/graftdb/graft/config"
)

// errHelp: --help was asked for and printed.
var errHelp = errors.New("help shown")

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// flagSet is a flag.FlagSet that accepts flags after positional arguments
// ("graft ingest file.ndjson --json") and prints a command's help.
type flagSet struct {
	*flag.FlagSet
	usage string // "graft ingest [flags] [FILE|-]"
	about string // what the command does, paragraphs
}

func newFlagSet(name, usage, about string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), usage: usage, about: about}
	fs.SetOutput(io.Discard)
	fs.FlagSet.Usage = func() {}
	return fs
}

func (fs *flagSet) printHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags:\n", fs.usage, strings.TrimSpace(fs.about))
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parse parses args, flags anywhere, and returns the positional arguments.
func (fs *flagSet) parse(args []string, stdout io.Writer) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printHelp(stdout)
				return nil, errHelp
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// sinkFlags are the flags of every sink-using command. Every flag writes
// into c, whose values before parsing come from the config file: flags
// override the file.
type sinkFlags struct {
	c          config.Config
	configPath string
}

// loadConfig reads --config FILE (looked up in args before parsing), or
// ./graft.yaml when it exists, or the defaults.
func (s *sinkFlags) loadConfig(args []string) error {
	path := ""
	for i, a := range args {
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "config="); ok && strings.HasPrefix(a, "-") {
			path = v
		} else if (a == "--config" || a == "-config") && i+1 < len(args) {
			path = args[i+1]
		}
	}
	if path == "" {
		if _, err := os.Stat("graft.yaml"); err == nil {
			path = "graft.yaml"
		}
	}
	s.c, s.configPath = config.Default(), path
	if path == "" {
		return nil
	}
	c, err := config.Load(path)
	if err != nil {
		return err
	}
	s.c = c
	return nil
}

func (s *sinkFlags) register(fs *flagSet) {
	fs.StringVar(&s.configPath, "config", s.configPath, "config `file` (default ./graft.yaml when it exists); flags override it")
	fs.StringVar(&s.c.DataDir, "data-dir", s.c.DataDir, "`directory` for the embedded graph store, dead letters and the lock file")
	fs.StringVar(&s.c.Sink, "sink", s.c.Sink, "sink `URL`; default sqlite:<data-dir>/graph.db (the embedded store)")
}

// input is the command's input: the file named by the only positional
// argument, or stdin ("-" or none).
type input struct {
	r    io.Reader
	name string // for positions and messages: the path, or "stdin"
	size int64  // bytes, 0 when unknown (stdin)
	f    *os.File
}

func openInput(pos []string, stdin io.Reader) (*input, error) {
	if len(pos) > 1 {
		return nil, usagef("one input file at most, got %d", len(pos))
	}
	if len(pos) == 0 || pos[0] == "-" {
		return &input{r: stdin, name: "stdin"}, nil
	}
	fh, err := os.Open(pos[0])
	if err != nil {
		return nil, err
	}
	in := &input{r: fh, name: pos[0], f: fh}
	if st, err := fh.Stat(); err == nil {
		in.size = st.Size()
	}
	return in, nil
}

// Close closes the file, if one was opened.
func (in *input) Close() {
	if in.f != nil {
		in.f.Close()
	}
}
