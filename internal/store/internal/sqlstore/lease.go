package sqlstore

import (
	"fmt"
	"sync"

	"github.com/rampartsec/rampart/internal/store"
)

// localLeases are the leases held in this process, by database and name.
var localLeases sync.Map // string → struct{}

// LocalLead is a Lead held within one process: of the stores of one
// process over the database db, one at a time holds name. Processes do
// not see each other's.
func LocalLead(db, name string) (store.Lease, error) {
	key := db + "\x00" + name
	if _, held := localLeases.LoadOrStore(key, struct{}{}); held {
		return nil, fmt.Errorf("%s is held: %w", name, store.ErrBusy)
	}
	return &localLease{key: key, lost: make(chan struct{})}, nil
}

type localLease struct {
	key  string
	lost chan struct{}
	once sync.Once
}

func (l *localLease) Lost() <-chan struct{} { return l.lost }

func (l *localLease) Release() {
	l.once.Do(func() { localLeases.Delete(l.key) })
}
