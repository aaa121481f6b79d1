package detect

// lru is a map bounded by a number of keys, the least recently used
// evicted first. The list is intrusive (a node holds its value), so that a
// key costs one allocation.
type lru[V any] struct {
	m          map[string]*node[V]
	head, tail *node[V] // head: most recently used
	max        int
	evicted    uint64
}

type node[V any] struct {
	key        string
	prev, next *node[V]
	v          V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{m: map[string]*node[V]{}, max: max}
}

// get returns the node of key, made most recent; created reports that it
// is new (its value zero), after evicting the least recent if full.
func (l *lru[V]) get(key string) (n *node[V], created bool) {
	if n = l.m[key]; n != nil {
		l.touch(n)
		return n, false
	}
	if len(l.m) >= l.max {
		l.remove(l.tail)
		l.evicted++
	}
	n = &node[V]{key: key}
	l.m[key] = n
	l.pushFront(n)
	return n, true
}

// delete drops key, if present.
func (l *lru[V]) delete(key string) {
	if n := l.m[key]; n != nil {
		l.remove(n)
	}
}

// peek returns the node of key without making it recent.
func (l *lru[V]) peek(key string) *node[V] { return l.m[key] }

func (l *lru[V]) touch(n *node[V]) {
	if l.head == n {
		return
	}
	l.unlink(n)
	l.pushFront(n)
}

func (l *lru[V]) pushFront(n *node[V]) {
	n.prev, n.next = nil, l.head
	if l.head != nil {
		l.head.prev = n
	}
	l.head = n
	if l.tail == nil {
		l.tail = n
	}
}

func (l *lru[V]) unlink(n *node[V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

func (l *lru[V]) remove(n *node[V]) {
	l.unlink(n)
	delete(l.m, n.key)
}

func (l *lru[V]) len() int { return len(l.m) }
