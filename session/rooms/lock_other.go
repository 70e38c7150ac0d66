//go:build !unix

package rooms

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// lockDir takes the data dir's lock where flock is missing: it creates
// DIR/lanmsg.lock exclusively and removes it on release. A server that dies
// without releasing it leaves the file behind, which the error names.
func lockDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, &InUseError{Dir: dir}
		}
		return nil, fmt.Errorf("rooms: lock %s: %w", path, err)
	}
	return func() {
		_ = f.Close()
		_ = os.Remove(path)
	}, nil
}
