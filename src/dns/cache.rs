//! A bounded DNS cache: at most `capacity` names, each entry expiring at its TTL, the
//! least recently used entry evicted when a new one needs room.
//!
//! Invariants: `len() <= capacity()` always; every operation is O(1) (a hash map from
//! name to a slot in a slab of nodes, and an intrusive doubly linked list through the
//! slots in recency order); an expired entry is never returned (it is removed when
//! met); memory is bounded by the capacity, never by how many names went through,
//! and reaches its steady state when the cache first fills: the hash table is then
//! sized for twice the capacity, so the deleted-entry markers that evictions leave
//! are always cleared in place (a table more than half full would instead double
//! once, at some later eviction).
//! Entries are positive (addresses) or negative (the name does not resolve: the
//! error and whether it is temporary).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// Default capacity (names).
pub const DEFAULT_CAPACITY: usize = 65_536;

const NIL: usize = usize::MAX;

/// What is known about a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// Its addresses.
    Addrs(Arc<[IpAddr]>),
    /// It does not resolve: the detail of the `dns` error.
    Negative(Arc<str>),
}

#[derive(Debug)]
struct Node {
    key: Arc<str>,
    value: Cached,
    expires: Instant,
    prev: usize,
    next: usize,
}

/// The cache; see the module docs.
#[derive(Debug)]
pub struct Cache {
    map: HashMap<Arc<str>, usize>,
    nodes: Vec<Node>,
    free: Vec<usize>,
    /// Most recently used.
    head: usize,
    /// Least recently used.
    tail: usize,
    capacity: usize,
}

impl Cache {
    /// An empty cache holding at most `capacity` names (0: nothing is kept).
    pub fn new(capacity: usize) -> Cache {
        Cache {
            map: HashMap::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
        }
    }

    /// Names held (expired ones not yet met included).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The most names held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.nodes[i].prev, self.nodes[i].next);
        if p == NIL {
            self.head = n;
        } else {
            self.nodes[p].next = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.nodes[n].prev = p;
        }
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].prev = NIL;
        self.nodes[i].next = self.head;
        if self.head != NIL {
            self.nodes[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn remove_slot(&mut self, i: usize) {
        self.unlink(i);
        let key = self.nodes[i].key.clone();
        self.map.remove(&key);
        // The slot's key and value are dropped when it is reused; free the value now.
        self.nodes[i].value = Cached::Negative(Arc::from(""));
        self.free.push(i);
    }

    /// The entry for `name` if present and not expired at `now`, with its expiry; the
    /// entry becomes the most recently used.
    pub fn get(&mut self, name: &str, now: Instant) -> Option<(&Cached, Instant)> {
        let i = *self.map.get(name)?;
        if self.nodes[i].expires <= now {
            self.remove_slot(i);
            return None;
        }
        self.unlink(i);
        self.push_front(i);
        let n = &self.nodes[i];
        Some((&n.value, n.expires))
    }

    /// Stores `value` for `name` until `expires`, evicting the least recently used
    /// entry when full.
    pub fn insert(&mut self, name: &str, value: Cached, expires: Instant) {
        if self.capacity == 0 {
            return;
        }
        if let Some(&i) = self.map.get(name) {
            self.nodes[i].value = value;
            self.nodes[i].expires = expires;
            self.unlink(i);
            self.push_front(i);
            return;
        }
        if self.map.len() >= self.capacity {
            if self.map.capacity() < 2 * self.capacity {
                self.map.reserve(2 * self.capacity - self.map.len());
            }
            let lru = self.tail;
            self.remove_slot(lru);
        }
        let key: Arc<str> = Arc::from(name);
        let node = Node {
            key: key.clone(),
            value,
            expires,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i] = node;
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        self.map.insert(key, i);
        self.push_front(i);
    }

    /// Forgets `name`.
    pub fn remove(&mut self, name: &str) {
        if let Some(&i) = self.map.get(name) {
            self.remove_slot(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn addr(n: u8) -> Cached {
        Cached::Addrs(Arc::from([IpAddr::from([10, 0, 0, n])]))
    }

    #[test]
    fn table_reaches_its_steady_size_when_first_full() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let mut c = Cache::new(1000);
        for i in 0..1000 {
            c.insert(&format!("n{i}"), addr(1), t0);
        }
        assert!(c.map.capacity() < 2000, "not grown before it is full");
        c.insert("one more", addr(1), t0);
        let table = c.map.capacity();
        assert!(table >= 2000);
        // Long churn: evictions leave deleted markers; the table never grows again.
        for i in 0..50_000 {
            c.insert(&format!("m{i}"), addr(1), t0);
        }
        // (`capacity()` dips as deleted markers accumulate, and comes back when the
        // table is cleaned in place; it would jump past `table` if it grew.)
        assert!(c.map.capacity() <= table, "{} > {table}", c.map.capacity());
        assert_eq!(c.len(), 1000);
    }

    #[test]
    fn expiry_and_lru_eviction() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Cache::new(2);
        c.insert("a", addr(1), t0 + 10 * s);
        c.insert("b", Cached::Negative(Arc::from("nx")), t0 + 10 * s);
        assert_eq!(c.get("a", t0).unwrap().0, &addr(1)); // a is now most recent
        c.insert("c", addr(3), t0 + s);
        assert_eq!(c.len(), 2);
        assert!(c.get("b", t0).is_none(), "b was least recently used");
        assert!(c.get("a", t0).is_some());
        assert!(c.get("c", t0).is_some());
        // Expired: gone, and the slot is reused.
        assert!(c.get("c", t0 + s).is_none());
        assert_eq!(c.len(), 1);
        c.insert("d", addr(4), t0 + s);
        c.insert("d", addr(5), t0 + 2 * s);
        assert_eq!(c.get("d", t0 + s).unwrap().0, &addr(5));
        assert_eq!(c.nodes.len(), 2);
        c.remove("a");
        assert!(c.get("a", t0).is_none());
        let mut z = Cache::new(0);
        z.insert("a", addr(1), t0 + s);
        assert!(z.is_empty());
    }

    proptest! {
        /// Against a model (a list in recency order): same answers, never over capacity.
        #[test]
        fn behaves_like_the_model(cap in 1usize..6, ops in proptest::collection::vec((0u8..3, 0u8..8, 1u64..5), 1..200)) {
            let t0 = Instant::now();
            let mut c = Cache::new(cap);
            let mut model: Vec<(String, u8, u64)> = Vec::new(); // front = most recent
            let mut now = 0u64;
            for (op, k, v) in ops {
                let key = format!("n{k}");
                let at = t0 + Duration::from_secs(now);
                match op {
                    0 => {
                        c.insert(&key, addr(v as u8), at + Duration::from_secs(v));
                        model.retain(|e| e.0 != key);
                        if model.len() >= cap { model.pop(); }
                        model.insert(0, (key, v as u8, now + v));
                    }
                    1 => {
                        let got = c.get(&key, at).map(|(x, _)| x.clone());
                        let pos = model.iter().position(|e| e.0 == key);
                        let want = match pos {
                            Some(p) if model[p].2 > now => {
                                let e = model.remove(p);
                                let w = addr(e.1);
                                model.insert(0, e);
                                Some(w)
                            }
                            Some(p) => { model.remove(p); None }
                            None => None,
                        };
                        prop_assert_eq!(got, want);
                    }
                    _ => now += v,
                }
                prop_assert!(c.len() <= cap);
                prop_assert_eq!(c.len(), model.len());
            }
        }
    }
}
