//! Symmetry reduction over request ids.
//!
//! The session never looks at the order of request ids: it assigns them from a counter, keeps
//! them in maps it only queries by key, and orders its queue by enqueue sequence numbers. Two
//! states that differ only by a renaming of request ids therefore behave alike, and the checker
//! needs to explore one of them.
//!
//! `auth_core::Session` keeps its fields private (rightly), so this module cannot rename the
//! ids inside it. It renames them inside the session's and the monitor's `Debug` text instead:
//! parsed into a tree, every `RequestId(n)` renamed by a canonical plan, every map keyed by
//! request id re-sorted, and the result hashed with the model's own state (renamed likewise).
//! The representative is only ever hashed (stateright continues the path with the original
//! state), so a key is all it needs.
//!
//! Sound because the key encodes the whole state up to the renaming: the `Debug` text holds
//! every field of the session and the monitor except the token secrets, which the key takes
//! from [`State::held`] instead. Two states with equal keys are therefore renamings of each
//! other. The plan only decides how much is merged, never whether a merge is sound. A test
//! checks that with one request (where no renaming can merge anything) the reduced and the
//! plain search count the same states.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use auth_core::RequestId;

use crate::model::{Msg, State};

/// The hash shared by every state that is a request-id renaming of `state`.
pub fn canonical_key(state: &State) -> u64 {
    let text = format!("{:?}", state.checked);
    let model_ids = state
        .net
        .iter()
        .filter_map(|msg| match msg {
            Msg::Response { id, .. } => Some(*id),
            _ => None,
        })
        .chain(state.open.keys().copied());
    let layout_known = model_ids.into_iter().all(|id| split(id).is_some());
    let tree = Parser::new(&text).document().filter(|_| layout_known);
    let Some(mut tree) = tree else {
        // Text that cannot be renamed: fall back to the plain hash (no reduction, still sound).
        let mut hasher = DefaultHasher::new();
        state.checked.hash(&mut hasher);
        return hasher.finish() ^ plain_rest(state);
    };

    // Signatures: everything said about each id, with ids masked. Ids are named by their
    // sequence (the submit counter), which is what `Debug` shows.
    let mut signatures: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    collect(&tree, "", &mut signatures);
    for msg in &state.net {
        if let Msg::Response {
            id,
            attempt,
            token,
            public,
        } = msg
        {
            signatures.entry(id.sequence()).or_default().push(format!(
                "net {:?} {attempt} {token:?} {public}",
                split(*id).map(|(_, slot)| slot)
            ));
        }
    }
    for (id, kind) in &state.open {
        signatures.entry(id.sequence()).or_default().push(format!(
            "open {:?} {kind:?}",
            split(*id).map(|(_, slot)| slot)
        ));
    }
    let mut order: Vec<(Vec<String>, u64)> = signatures
        .into_iter()
        .map(|(id, mut signature)| {
            signature.sort();
            (signature, id)
        })
        .collect();
    order.sort();
    let plan: BTreeMap<u64, u64> = order
        .iter()
        .zip(1u64..)
        .map(|((_, id), new)| (*id, new))
        .collect();
    let rename = |sequence: u64| plan.get(&sequence).copied().unwrap_or(sequence);
    // A model-side id renamed: new sequence, same slot bits.
    let renamed = |id: RequestId| split(id).map(|(sequence, slot)| (rename(sequence), slot));

    tree.rename(&rename);
    let mut hasher = DefaultHasher::new();
    tree.render(false).hash(&mut hasher);
    let mut net: Vec<_> = state
        .net
        .iter()
        .map(|msg| match *msg {
            Msg::Response {
                id,
                attempt,
                token,
                public,
            } => (Some((renamed(id), attempt, token, public)), None),
            other => (None, Some(other)),
        })
        .collect();
    net.sort();
    net.hash(&mut hasher);
    let mut open: Vec<_> = state
        .open
        .iter()
        .map(|(id, k)| (renamed(*id), *k))
        .collect();
    open.sort();
    open.hash(&mut hasher);
    state.server.hash(&mut hasher);
    state.store.hash(&mut hasher);
    state.budget.hash(&mut hasher);
    state.events.hash(&mut hasher);
    // The session's tokens, which its Debug text redacts.
    if state.checked.session.generation().is_some() {
        state.held.hash(&mut hasher);
    }
    hasher.finish()
}

/// Bits of a [`RequestId`] below its sequence: auth-core packs the request's table slot there.
/// Checked on every id ([`split`]); if the layout ever changes, symmetry falls back to the
/// plain hash instead of merging wrongly.
const SLOT_BITS: u32 = 20;

/// An id as (sequence, slot bits), or `None` if it is not laid out as expected.
fn split(id: RequestId) -> Option<(u64, u64)> {
    let sequence = id.sequence();
    let high = sequence.checked_mul(1 << SLOT_BITS)?;
    (id.0 >> SLOT_BITS == sequence).then(|| (sequence, id.0 - high))
}

fn plain_rest(state: &State) -> u64 {
    let mut hasher = DefaultHasher::new();
    state.net.hash(&mut hasher);
    state.open.hash(&mut hasher);
    state.server.hash(&mut hasher);
    state.store.hash(&mut hasher);
    state.budget.hash(&mut hasher);
    state.events.hash(&mut hasher);
    hasher.finish()
}

/// Records, for every request id in the tree, where it occurs and (for map entries keyed by
/// it) the entry's value, with all ids masked.
fn collect(node: &Node, path: &str, signatures: &mut BTreeMap<u64, Vec<String>>) {
    if let Some(id) = node.request_id() {
        signatures.entry(id).or_default().push(format!("at {path}"));
        return;
    }
    let Some(group) = &node.group else {
        return;
    };
    let here = format!("{path}/{}", node.head);
    for (index, item) in group.items.iter().enumerate() {
        match &item.key {
            Some(key) => {
                if let Some(id) = key.request_id() {
                    signatures
                        .entry(id)
                        .or_default()
                        .push(format!("key {here}: {}", item.value.render(true)));
                    collect(&item.value, &format!("{here}[id]"), signatures);
                } else {
                    collect(key, &here, signatures);
                    collect(
                        &item.value,
                        &format!("{here}.{}", key.render(true)),
                        signatures,
                    );
                }
            }
            // Position matters in a list (the session's slab and queue): keep it.
            None => collect(&item.value, &format!("{here}[{index}]"), signatures),
        }
    }
}

/// A node of `Debug` output: `Head`, `Head(..)`, `Head { .. }`, `{..}`, `[..]`, or an atom.
#[derive(Debug)]
struct Node {
    head: String,
    group: Option<Group>,
}

#[derive(Debug)]
struct Group {
    open: char,
    items: Vec<Item>,
}

#[derive(Debug)]
struct Item {
    key: Option<Node>,
    value: Node,
}

impl Node {
    fn request_id(&self) -> Option<u64> {
        if self.head != "RequestId" {
            return None;
        }
        match self.group.as_ref()?.items.as_slice() {
            [Item { key: None, value }] if value.group.is_none() => {
                value.head.trim_start_matches('#').parse().ok()
            }
            _ => None,
        }
    }

    fn rename(&mut self, rename: &impl Fn(u64) -> u64) {
        if let Some(id) = self.request_id() {
            if let Some(item) = self.group.as_mut().and_then(|g| g.items.first_mut()) {
                item.value.head = format!("#{}", rename(id));
            }
            return;
        }
        let Some(group) = self.group.as_mut() else {
            return;
        };
        for item in &mut group.items {
            if let Some(key) = item.key.as_mut() {
                key.rename(rename);
            }
            item.value.rename(rename);
        }
        // Maps keyed by request id, and sets of request ids, are ordered by id: re-sort.
        let id_of = |item: &Item| match &item.key {
            Some(key) => key.request_id(),
            None if group.open == '{' => item.value.request_id(),
            None => None,
        };
        if !group.items.is_empty() && group.items.iter().all(|i| id_of(i).is_some()) {
            group.items.sort_by_key(|i| id_of(i).unwrap_or(0));
        }
    }

    fn render(&self, mask: bool) -> String {
        let mut out = String::new();
        self.render_into(&mut out, mask);
        out
    }

    fn render_into(&self, out: &mut String, mask: bool) {
        if mask && self.request_id().is_some() {
            out.push_str("RequestId(#_)");
            return;
        }
        out.push_str(&self.head);
        if let Some(group) = &self.group {
            out.push(group.open);
            for (i, item) in group.items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if let Some(key) = &item.key {
                    key.render_into(out, mask);
                    out.push(':');
                }
                item.value.render_into(out, mask);
            }
            out.push(match group.open {
                '(' => ')',
                '[' => ']',
                _ => '}',
            });
        }
    }
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text: text.as_bytes(),
            at: 0,
        }
    }

    fn document(mut self) -> Option<Node> {
        let node = self.node()?;
        self.skip_space();
        (self.at == self.text.len()).then_some(node)
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn node(&mut self) -> Option<Node> {
        self.skip_space();
        let head = match self.peek()? {
            b'"' => self.string()?,
            b'{' | b'[' | b'(' => String::new(),
            _ => {
                let start = self.at;
                while self
                    .peek()
                    .is_some_and(|b| !b.is_ascii_whitespace() && !b"{}[](),:\"".contains(&b))
                {
                    self.at += 1;
                }
                if self.at == start {
                    return None;
                }
                String::from_utf8_lossy(&self.text[start..self.at]).into_owned()
            }
        };
        let before_space = self.at;
        self.skip_space();
        let group = match self.peek() {
            Some(open @ (b'{' | b'[' | b'(')) => Some(self.group(char::from(open))?),
            _ => {
                self.at = before_space;
                None
            }
        };
        Some(Node { head, group })
    }

    fn group(&mut self, open: char) -> Option<Group> {
        let close = match open {
            '(' => b')',
            '[' => b']',
            _ => b'}',
        };
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space();
            if self.peek()? == close {
                self.at += 1;
                return Some(Group { open, items });
            }
            if !items.is_empty() {
                if self.peek()? != b',' {
                    return None;
                }
                self.at += 1;
                self.skip_space();
                if self.peek()? == close {
                    self.at += 1;
                    return Some(Group { open, items });
                }
            }
            let first = self.node()?;
            self.skip_space();
            let item = if self.peek() == Some(b':') {
                self.at += 1;
                Item {
                    key: Some(first),
                    value: self.node()?,
                }
            } else {
                Item {
                    key: None,
                    value: first,
                }
            };
            items.push(item);
        }
    }

    fn string(&mut self) -> Option<String> {
        let start = self.at;
        self.at += 1;
        loop {
            match self.peek()? {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    return Some(String::from_utf8_lossy(&self.text[start..self.at]).into_owned());
                }
                _ => self.at += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn renaming_and_resorting_a_map_keyed_by_request_id() {
        let text = r#"S { m: {RequestId(#1): A { x: 1 }, RequestId(#2): B}, q: [RequestId(#2)], s: "a, \"b\"" }"#;
        let mut tree = Parser::new(text).document().unwrap();
        assert_eq!(
            tree.render(false),
            r#"S{m:{RequestId(#1):A{x:1},RequestId(#2):B},q:[RequestId(#2)],s:"a, \"b\""}"#
        );
        tree.rename(&|id| 3 - id);
        assert_eq!(
            tree.render(false),
            r#"S{m:{RequestId(#1):B,RequestId(#2):A{x:1}},q:[RequestId(#1)],s:"a, \"b\""}"#
        );
    }

    #[test]
    fn malformed_text_is_refused() {
        for text in ["S {", "S { a: }", "[1 2]", "\"open"] {
            assert!(Parser::new(text).document().is_none(), "{text}");
        }
    }
}
