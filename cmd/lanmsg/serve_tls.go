package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/names"
	"github.com/lanmsg/lanmsg/session/trust"
)

// TXT keys with which a server advertises its TLS identity (PROTOCOL.md,
// "TXT keys").
const (
	fpTXT  = "fp"  // the server key's fingerprint, SHA256:...
	tlsTXT = "tls" // "1": TLS on the same port
	idTXT  = "id"  // a server id: from the key, the host and the port
)

// serverTLS is what serve needs of its identity.
type serverTLS struct {
	id  *trust.Identity
	txt map[string]string
}

// setupTLS loads the config dir's key, makes the server's certificate and
// sets cfg.TLS, so that clients may open TLS sessions on the port.
func (c *serveCmd) setupTLS(dir configDir, cfg *session.Config, log *zerolog.Logger) (*serverTLS, error) {
	id, err := dir.identity()
	if err != nil {
		return nil, err
	}
	cert, err := id.Certificate()
	if err != nil {
		return nil, &cliError{code: exitFailure, err: err}
	}
	verify, err := c.allowCheck(log)
	if err != nil {
		return nil, err
	}
	owners, err := trust.NameOwnersIn(id.Dir)
	if err != nil {
		return nil, trustError(err)
	}
	cfg.ChatNames = owners
	cfg.TLS = trust.ServerConfig(cert, verify)
	cfg.TLSOnly = c.TLSOnly
	ev := log.Info().Str(session.FieldKey, id.Fingerprint.String()).Str("code", id.Fingerprint.ShortCode()).Str("config_dir", id.Dir)
	if id.Created {
		ev.Msg("made a new key for this server (clients pin it on first contact)")
	} else {
		ev.Msg("server key")
	}
	return &serverTLS{id: id, txt: map[string]string{fpTXT: id.Fingerprint.String(), tlsTXT: "1"}}, nil
}

// checkName applies the name policy (session/names) to --name: the name
// advertised is the one people read in browse and the picker, so a name
// that hides or reorders text is refused, and spaces and width are made
// plain (PROTOCOL.md, "Names").
func (c *serveCmd) checkName() error {
	if c.Name == "" {
		return nil
	}
	n, err := names.Instance(c.Name)
	if err != nil {
		return &cliError{code: exitUsage, err: fmt.Errorf("--name: %w", err),
			hint: "use letters, digits, spaces and punctuation that show as they are, at most 63 bytes"}
	}
	c.Name = n
	return nil
}

// serverID is the TXT id of a server with key fp on port: stable across
// restarts, and different for two servers that share a config dir (on one
// machine, by port; on two machines sharing a home, by hostname).
func serverID(fp trust.Fingerprint, port int) string {
	host, _ := os.Hostname()
	h := sha256.New()
	h.Write(fp[:])
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], uint16(port))
	h.Write(p[:])
	h.Write([]byte(host))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// allowCheck is the client check of --allow FILE; nil without it.
func (c *serveCmd) allowCheck(log *zerolog.Logger) (func(trust.Fingerprint, bool) error, error) {
	if c.Allow == "" {
		return nil, nil
	}
	allow, err := trust.LoadAllowList(c.Allow)
	if err != nil {
		ce := trustError(err).(*cliError)
		ce.code = exitUsage
		if ce.hint == "" {
			ce.hint = "give a file with one key a line, as 'lanmsg id' prints it on its first line"
		}
		return nil, ce
	}
	ev := log.Info().Str("file", c.Allow).Int("keys", allow.Len())
	if c.TLSOnly {
		ev.Msg("only the keys in the allow file may connect")
	} else {
		ev.Msg("only the keys in the allow file may connect over TLS; plain sessions (the tutorial's client) are still taken: add --tls-only to refuse them")
	}
	denied := &deniedLog{}
	return func(fp trust.Fingerprint, ok bool) error {
		err := allow.VerifyClient(fp, ok)
		if err != nil {
			denied.note(log, fp, ok)
		}
		return err
	}, nil
}

// deniedLog logs clients refused by --allow, at most once a second.
type deniedLog struct{ session.LogThrottle }

func (d *deniedLog) note(log *zerolog.Logger, fp trust.Fingerprint, ok bool) {
	n, allow := d.Allow()
	if !allow {
		return
	}
	key := "none"
	if ok {
		key = fp.String()
	}
	log.Warn().Str(session.FieldClientKey, key).Int(session.FieldRefused, n).Msg("client refused: its key is not in the --allow file (to let it in, add the line 'lanmsg id' prints on it)")
}

// notAllowedHint is the hint for a client that a server's --allow refused:
// TLS reports it as a bad certificate.
func notAllowedHint(err error) string {
	if err != nil && strings.Contains(err.Error(), "tls: bad certificate") {
		return "the server lets only listed keys in (serve --allow): give its owner your key, the first line 'lanmsg id' prints"
	}
	return ""
}
