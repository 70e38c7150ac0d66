package main

import (
	"errors"

	"github.com/lanmsg/lanmsg/session/trust"
)

// configDir is the global --config-dir: where the key and the pins live.
// Empty means the default, os.UserConfigDir()/lanmsg.
type configDir string

// path returns the config dir to use.
func (d configDir) path() (string, error) {
	if d != "" {
		return string(d), nil
	}
	p, err := trust.DefaultDir()
	if err != nil {
		return "", &cliError{code: exitFailure, err: err,
			hint: "set XDG_CONFIG_HOME or HOME, or give the directory with --config-dir DIR"}
	}
	return p, nil
}

// identity loads the config dir's key, making it on first use.
func (d configDir) identity() (*trust.Identity, error) {
	p, err := d.path()
	if err != nil {
		return nil, err
	}
	id, err := trust.Load(p)
	if err != nil {
		return nil, trustError(err)
	}
	return id, nil
}

// trustError gives an error of package trust its hint for the person.
func trustError(err error) error {
	var pe *trust.PermissionError
	if errors.As(err, &pe) {
		return &cliError{code: exitFailure, err: err, hint: pe.Hint()}
	}
	var parse *trust.ParseError
	if errors.As(err, &parse) {
		return &cliError{code: exitFailure, err: err, hint: parse.Hint()}
	}
	return &cliError{code: exitFailure, err: err}
}
