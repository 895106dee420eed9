//! Prepared statements and portals by name. Most drivers use the unnamed
//! statement and portal for everything, so those sit in a slot of their own
//! and cost no hashing; named ones are in a map with a seeded fast hasher
//! (foldhash: names come from the client, and one session's names must not
//! be able to slow down the other sessions of its thread by colliding).

//!
//! The server knows a statement or portal by the first 63 bytes of its name
//! (its hash tables' keys are `NAMEDATALEN` bytes with the terminator, and
//! names compare by that prefix), so the gate does too: two names that
//! differ only after byte 63 are one name.

use std::collections::HashMap;

/// The bytes of a name the server keeps (`NAMEDATALEN - 1`).
pub(super) const NAME_BYTES: usize = 63;

/// The part of a client's name that the server uses.
#[inline]
pub(super) fn server_name(name: &[u8]) -> &[u8] {
    &name[..name.len().min(NAME_BYTES)]
}

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
            self.named.get(server_name(name))
        }
    }

    #[inline]
    pub fn get_mut(&mut self, name: &[u8]) -> Option<&mut T> {
        if name.is_empty() {
            self.unnamed.as_mut()
        } else {
            self.named.get_mut(server_name(name))
        }
    }

    /// Sets `name` to `value`, replacing what it named.
    #[inline]
    pub fn insert(&mut self, name: &[u8], value: T) {
        if name.is_empty() {
            self.unnamed = Some(value);
        } else {
            self.named.insert(server_name(name).into(), value);
        }
    }

    /// Takes the named entry `name` out (never the unnamed one).
    pub fn take(&mut self, name: &[u8]) -> Option<T> {
        self.named.remove(server_name(name))
    }

    /// Whether there is no entry at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.unnamed.is_none() && self.named.is_empty()
    }

    pub fn remove(&mut self, name: &[u8]) {
        if name.is_empty() {
            self.unnamed = None;
        } else {
            self.named.remove(server_name(name));
        }
    }

    /// Takes every named entry out, leaving the map empty (the unnamed
    /// one is dropped).
    pub fn drain_named(&mut self) -> impl Iterator<Item = (Box<[u8]>, T)> + '_ {
        self.unnamed = None;
        self.named.drain()
    }

    #[inline]
    /// Forgets every named entry; the unnamed one stays.
    pub fn clear_named(&mut self) {
        self.named.clear();
    }

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

    #[test]
    fn names_are_their_first_63_bytes() {
        let mut m = Named::default();
        let long_w = [&[b's'; 63][..], b"W"].concat();
        let long_r = [&[b's'; 63][..], b"R"].concat();
        m.insert(&long_w, 1);
        assert_eq!(m.get(&long_r), Some(&1));
        assert_eq!(m.get(&[b's'; 63]), Some(&1));
        m.remove(&long_r);
        assert!(m.get(&long_w).is_none());
    }
}
