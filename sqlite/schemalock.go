package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// SchemaLockSuffix names the file beside a database whose lock is the
// database's schema lock.
const SchemaLockSuffix = ".schema-lock"

// schemaLockPoll is how often a waiter tries the schema lock again. Waits
// happen only while another process migrates the same database.
const schemaLockPoll = 20 * time.Millisecond

// errLocked reports that another holder has the lock.
var errLocked = errors.New("locked")

// LockSchema takes the database's schema lock, waiting while another holder
// has it, in this process or another, and returns the function that releases
// it. The lock is an operating-system lock on a file of its own beside the
// database: SQLite's locks on the database file itself last one transaction,
// and migrations take several. The system releases it if the process dies.
func (db *DB) LockSchema(ctx context.Context) (unlock func() error, err error) {
	f, err := os.OpenFile(db.path+SchemaLockSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock schema: %w", err)
	}
	for {
		err := tryLockFile(f)
		if err == nil {
			break
		}
		if !errors.Is(err, errLocked) {
			f.Close()
			return nil, fmt.Errorf("lock schema: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock schema: %w", ctx.Err())
		case <-time.After(schemaLockPoll):
		}
	}
	return func() error {
		err := unlockFile(f)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unlock schema: %w", err)
		}
		return nil
	}, nil
}
