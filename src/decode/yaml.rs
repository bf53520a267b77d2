//! A YAML document tree that keeps where each node starts (line and
//! column), built from yaml-rust2's event parser. JSON is YAML, so
//! `kubectl -o json` output goes through here too.
//!
//! Aliases are expanded (a Secret's `data` may be `*common`) and `<<` merge
//! keys are followed on lookup; nesting depth and the number of nodes
//! (alias expansion) are limited so a hostile file cannot exhaust the stack
//! or memory.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};

/// Deepest nesting accepted (Kubernetes objects nest about ten levels).
const MAX_NESTING: usize = 128;
/// Most nodes one document may create, aliases expanded ("billion
/// laughs"). Per document: a long multi-document file is not cut short.
const MAX_NODES: usize = 1_000_000;
/// Most nodes alias expansion may copy in one file, all documents
/// together: documents that each stay under `MAX_NODES` by aliasing an
/// earlier one's anchor cannot add up without end.
const MAX_EXPANDED: usize = 4 * MAX_NODES;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(String),
    Map(Vec<(Node, Node)>),
    Seq(Vec<Node>),
}

/// A node and where it starts: 1-based line, 0-based column in characters.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: usize,
    pub col: usize,
    /// Nodes in this subtree (for the alias-expansion limit).
    size: usize,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The value of `key` in a mapping, following `<<` merge keys.
    pub fn get(&self, key: &str) -> Option<&Node> {
        let Value::Map(entries) = &self.value else {
            return None;
        };
        if let Some((_, v)) = entries.iter().find(|(k, _)| k.as_str() == Some(key)) {
            return Some(v);
        }
        let (_, merge) = entries.iter().find(|(k, _)| k.as_str() == Some("<<"))?;
        match &merge.value {
            Value::Map(_) => merge.get(key),
            Value::Seq(items) => items.iter().find_map(|m| m.get(key)),
            Value::Scalar(_) => None,
        }
    }

    /// A mapping's entries whose keys are scalars, merged entries after own.
    pub fn entries(&self) -> Vec<(&str, &Node)> {
        self.keyed_entries()
            .into_iter()
            .map(|(k, _, v)| (k, v))
            .collect()
    }

    /// Like `entries`, with each key's node (for its position).
    pub fn keyed_entries(&self) -> Vec<(&str, &Node, &Node)> {
        let Value::Map(entries) = &self.value else {
            return Vec::new();
        };
        let mut out: Vec<(&str, &Node, &Node)> = Vec::new();
        let mut merges = Vec::new();
        for (k, v) in entries {
            match k.as_str() {
                Some("<<") => merges.push(v),
                Some(key) => out.push((key, k, v)),
                None => {}
            }
        }
        for m in merges {
            let maps: Vec<&Node> = match &m.value {
                Value::Seq(items) => items.iter().collect(),
                _ => vec![m],
            };
            for m in maps {
                for (k, kn, v) in m.keyed_entries() {
                    if !out.iter().any(|(o, _, _)| *o == k) {
                        out.push((k, kn, v));
                    }
                }
            }
        }
        out
    }

    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// `a.b.c` as a scalar.
    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        let mut n = self;
        for p in path {
            n = n.get(p)?;
        }
        n.as_str()
    }
}

/// An open collection while its events arrive.
enum Frame {
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        anchor: usize,
        line: usize,
        col: usize,
        size: usize,
    },
    Seq {
        items: Vec<Node>,
        anchor: usize,
        line: usize,
        col: usize,
        size: usize,
    },
}

/// Parses every document of `text`. Documents completed before a syntax
/// error are returned with it, so a broken last document does not hide the
/// rest; a document over the node limit is dropped (and named in the
/// error) and the documents after it are still parsed.
pub fn parse(text: &str) -> (Vec<Node>, Option<String>) {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Anchors of earlier documents stay usable (leniency: YAML scopes them
    // to their document); the node count is per document, the expansion
    // count per file.
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut nodes = 0usize;
    let mut expanded = 0usize;
    let mut doc_line = 1usize;
    // Set while the rest of a document over the limit is passed over.
    let mut skipping = false;
    let mut first_err: Option<String> = None;
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(e) => e,
            Err(e) => return (docs, first_err.or(Some(e.to_string()))),
        };
        let (line, col) = (mark.line(), mark.col());
        match event {
            Event::DocumentStart => {
                (nodes, skipping, doc_line) = (0, false, line);
                stack.clear();
                continue;
            }
            Event::DocumentEnd | Event::StreamEnd if skipping => {
                skipping = false;
                stack.clear();
                if matches!(event, Event::StreamEnd) {
                    break;
                }
                continue;
            }
            _ if skipping => continue,
            _ => {}
        }
        let alias = matches!(event, Event::Alias(_));
        let (node, anchor) = match event {
            Event::StreamEnd => break,
            Event::Scalar(value, _, anchor, _) => (
                Node {
                    value: Value::Scalar(value),
                    line,
                    col,
                    size: 1,
                },
                anchor,
            ),
            Event::Alias(id) => match anchors.get(&id) {
                // Checked before the copy: the copy is the cost.
                Some(n) if nodes + n.size > MAX_NODES || expanded + n.size > MAX_EXPANDED => {
                    first_err.get_or_insert(over_limit(doc_line));
                    skipping = true;
                    continue;
                }
                Some(n) => (n.clone(), 0),
                None => {
                    first_err.get_or_insert(format!(
                        "unknown alias at line {line}; the document starting at line \
                         {doc_line} was not decoded"
                    ));
                    skipping = true;
                    continue;
                }
            },
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_NESTING {
                    first_err.get_or_insert(format!(
                        "nesting deeper than {MAX_NESTING} levels at line {line}; the document \
                         starting at line {doc_line} was not decoded"
                    ));
                    skipping = true;
                    continue;
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        items: Vec::new(),
                        anchor,
                        line,
                        col,
                        size: 1,
                    }
                } else {
                    Frame::Map {
                        entries: Vec::new(),
                        key: None,
                        anchor,
                        line,
                        col,
                        size: 1,
                    }
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq {
                    items,
                    anchor,
                    line,
                    col,
                    size,
                }) => (
                    Node {
                        value: Value::Seq(items),
                        line,
                        col,
                        size,
                    },
                    anchor,
                ),
                Some(Frame::Map {
                    entries,
                    anchor,
                    line,
                    col,
                    size,
                    ..
                }) => (
                    Node {
                        value: Value::Map(entries),
                        line,
                        col,
                        size,
                    },
                    anchor,
                ),
                None => return (docs, Some(format!("unbalanced collection at line {line}"))),
            },
            _ => continue,
        };
        // A collection's children were counted as they came; an alias
        // copies its whole subtree.
        nodes += if alias { node.size } else { 1 };
        if alias {
            expanded += node.size;
        }
        if nodes > MAX_NODES || expanded > MAX_EXPANDED {
            first_err.get_or_insert(over_limit(doc_line));
            skipping = true;
            continue;
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => docs.push(node),
            Some(Frame::Seq { items, size, .. }) => {
                *size += node.size;
                items.push(node);
            }
            Some(Frame::Map {
                entries, key, size, ..
            }) => {
                *size += node.size;
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                }
            }
        }
    }
    (docs, first_err)
}

fn over_limit(doc_line: usize) -> String {
    format!(
        "the document starting at line {doc_line} has more than {MAX_NODES} nodes once aliases \
         are expanded (or the file's aliases expand past {MAX_EXPANDED}); it was not decoded"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_positions_anchors_and_merges() {
        let text =
            "# c\nbase: &b\n  user: app\n---\nkind: Secret\ndata:\n  <<: {x: 1}\n  k: v\nref: *b\n";
        let (docs, err) = parse(text);
        assert_eq!(err, None);
        assert_eq!(docs.len(), 2);
        let d = &docs[1];
        assert_eq!(d.get("kind").unwrap().as_str(), Some("Secret"));
        let k = d.get("data").unwrap().get("k").unwrap();
        assert_eq!((k.line, k.col), (8, 5));
        assert_eq!(d.get("data").unwrap().get("x").unwrap().as_str(), Some("1"));
        assert_eq!(d.str_at(&["ref", "user"]), Some("app"));
        assert_eq!(docs[0].str_at(&["base", "user"]), Some("app"));
    }

    #[test]
    fn json_parses_as_yaml() {
        let (docs, err) = parse("{\n  \"kind\": \"Secret\",\n  \"data\": {\"a\": \"YQ==\"}\n}\n");
        assert_eq!(err, None);
        assert_eq!(docs[0].str_at(&["data", "a"]), Some("YQ=="));
        assert_eq!(docs[0].get("data").unwrap().get("a").unwrap().line, 3);
    }

    #[test]
    fn broken_and_hostile_input_is_an_error_not_a_crash() {
        let (docs, err) = parse("a: 1\n---\nb: [1, 2\nc: d\n");
        assert_eq!(docs.len(), 1);
        assert!(err.is_some());
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse(&deep).1.unwrap();
        assert!(
            err.contains("nesting") || err.contains("recursion"),
            "{err}"
        );
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            laughs.push_str(&format!(
                "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(parse(&laughs).1.unwrap().contains("aliases"));
    }

    /// The limits are per document: one hostile document does not hide the
    /// Secret after it, and a long file of ordinary documents is read whole
    /// (its node count once exceeded a whole-file limit).
    #[test]
    fn limits_apply_per_document() {
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..7 {
            let prev = if i == 0 {
                "a".into()
            } else {
                format!("l{}", i - 1)
            };
            laughs.push_str(&format!(
                "l{i}: &l{i} [{}]\n",
                vec![format!("*{prev}"); 10].join(", ")
            ));
        }
        let deep = format!("x: {}{}\n", "[".repeat(200), "]".repeat(200));
        let secret = "kind: Secret\ndata:\n  k: YQ==\n";
        let text = format!("{laughs}---\n{deep}---\n{secret}");
        let (docs, err) = parse(&text);
        let err = err.unwrap();
        assert!(err.contains("starting at line 1"), "{err}");
        assert_eq!(docs.len(), 1, "{docs:?}");
        assert_eq!(docs[0].str_at(&["data", "k"]), Some("YQ=="));

        // 30 documents of 20,000 entries: 1.2 million nodes in all.
        let doc: String = (0..20_000).map(|i| format!("k{i}: v\n")).collect();
        let text = vec![doc; 30].join("---\n");
        let (docs, err) = parse(&text);
        assert_eq!(err, None);
        assert_eq!(docs.len(), 30);
    }
}
