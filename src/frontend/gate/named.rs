//! Prepared statements and portals by name. Most drivers use the unnamed
//! statement and portal for everything, so those sit in a slot of their own
//! and cost no hashing; named ones are in a map with a seeded fast hasher
//! (foldhash: names come from the client, and one session's names must not
//! be able to slow down the other sessions of its thread by colliding).

use std::collections::HashMap;

pub(super) struct Named<T> {
    unnamed: Option<T>,
    named: HashMap<Box<[u8]>, T, foldhash::fast::RandomState>,
}

impl<T> Default for Named<T> {
    fn default() -> Self {
        Named {
            unnamed: None,
            named: HashMap::default(),
        }
    }
}

impl<T> Named<T> {
    #[inline]
    pub fn get(&self, name: &[u8]) -> Option<&T> {
        if name.is_empty() {
            self.unnamed.as_ref()
        } else {
            self.named.get(name)
        }
    }

    #[inline]
    pub fn get_mut(&mut self, name: &[u8]) -> Option<&mut T> {
        if name.is_empty() {
            self.unnamed.as_mut()
        } else {
            self.named.get_mut(name)
        }
    }

    /// Sets `name` to `value`, replacing what it named.
    #[inline]
    pub fn insert(&mut self, name: &[u8], value: T) {
        if name.is_empty() {
            self.unnamed = Some(value);
        } else {
            self.named.insert(name.into(), value);
        }
    }

    pub fn remove(&mut self, name: &[u8]) {
        if name.is_empty() {
            self.unnamed = None;
        } else {
            self.named.remove(name);
        }
    }

    /// Takes every named entry out, leaving the map empty (the unnamed
    /// one is dropped).
    pub fn drain_named(&mut self) -> impl Iterator<Item = (Box<[u8]>, T)> + '_ {
        self.unnamed = None;
        self.named.drain()
    }

    #[inline]
    pub fn clear(&mut self) {
        self.unnamed = None;
        if !self.named.is_empty() {
            self.named.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_and_named_are_apart() {
        let mut m = Named::default();
        m.insert(b"", 1);
        m.insert(b"s1", 2);
        assert_eq!(m.get(b""), Some(&1));
        assert_eq!(m.get(b"s1"), Some(&2));
        m.insert(b"", 3);
        *m.get_mut(b"s1").unwrap() += 10;
        assert_eq!((m.get(b""), m.get(b"s1")), (Some(&3), Some(&12)));
        m.remove(b"");
        assert!(m.get(b"").is_none() && m.get(b"s1").is_some());
        m.clear();
        assert!(m.get(b"s1").is_none());
    }
}
