package app

import "fmt"

// ConfigError is a setting that cannot be used as given: a usage error
// (graft exits 2). The message names the setting, as a flag or a field.
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

func configErr(format string, args ...any) error {
	return &ConfigError{fmt.Sprintf(format, args...)}
}
