package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// EnvName is the environment variable of a setting: GRAFT_ and its path in
// graft.yaml in capitals, dots and nesting as underscores
// (batch.max_writes: GRAFT_BATCH_MAX_WRITES).
func EnvName(path string) string {
	return "GRAFT_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// FromEnv sets every setting whose environment variable (EnvName) lookup
// finds, over c: how the Lambda handler, which has no flags, takes every
// setting graft.yaml has. Errors name the variable.
func FromEnv(c Config, lookup func(string) (string, bool)) (Config, error) {
	var errs []error
	walk(reflect.ValueOf(&c).Elem(), "", func(path string, v reflect.Value) {
		name := EnvName(path)
		raw, ok := lookup(name)
		if !ok {
			return
		}
		if err := setValue(v, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q (%s): %v", name, raw, path, err))
		}
	})
	return c, errors.Join(errs...)
}

// Paths lists the path of every setting, in the order of the Config struct.
func Paths() []string {
	var out []string
	var c Config
	walk(reflect.ValueOf(&c).Elem(), "", func(path string, _ reflect.Value) { out = append(out, path) })
	return out
}

var durationType = reflect.TypeOf(time.Duration(0))

// walk calls fn with the path and value of every leaf setting of v.
func walk(v reflect.Value, prefix string, fn func(path string, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		path := tag
		if prefix != "" {
			path = prefix + "." + tag
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct && f.Type() != durationType {
			walk(f, path, fn)
			continue
		}
		fn(path, f)
	}
}

func setValue(v reflect.Value, raw string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return errors.New("want a duration such as 500ms, 10s or 24h")
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("want true or false")
		}
		v.SetBool(b)
	case v.CanInt():
		n, err := strconv.ParseInt(raw, 10, v.Type().Bits())
		if err != nil {
			return errors.New("want an integer")
		}
		v.SetInt(n)
	default:
		return fmt.Errorf("settings of type %s cannot come from the environment", v.Type())
	}
	return nil
}
