//! The house in layers, read from the code: every `crate::` path (in `use` lines and inline,
//! comments left out) is resolved to the file that defines its module, and the imports must
//! keep lab-core's floors (`src/lib.rs` lists them):
//! - a file imports only from its own floor's folder or from a lower floor;
//! - two methods never import each other, nor two analyses (they may share `analyses/error`);
//! - no file of lab-core, lab-cli or lab-wasm is in an import circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors of lab-core, from the ground up; folders of one floor never import each other.
const FLOORS: &[(&str, usize)] = &[
    ("base", 1),
    ("pruning", 2),
    ("training", 2),
    ("deploy", 3),
    ("methods", 3),
    ("analyses", 4),
    ("report", 5),
];

/// Folders whose members (a file or a sub-folder each) never import each other, but for the
/// shared members named.
const APART: &[(&str, &[&str])] = &[("methods", &[]), ("analyses", &["error"])];

/// A crate's source files by module path (`["training", "train"]` for `training/train.rs`).
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let mut inner = prefix.to_vec();
                inner.push(name);
                walk(&path, &inner, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut module = prefix.to_vec();
                if name != "mod" && name != "lib" && name != "main" {
                    module.push(name);
                }
                out.insert(module, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

/// The code without comments and string literals (so doc links and messages are not paths).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut prev = ' ';
        for c in line.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
                continue;
            }
            if c == '/' && prev == '/' {
                out.pop();
                break;
            }
            if c == '"' && prev != '\'' {
                in_string = true;
            } else {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap().trim();
        return vec![path.trim_end_matches("::self").to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let (mut parts, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(p))
        .map(|p| {
            if p == "self" {
                prefix.trim_end_matches("::").to_string()
            } else {
                format!("{prefix}{p}")
            }
        })
        .collect()
}

/// Every path a file names from the root of its crate (`crate::`, `super::`, `self::`),
/// as segments after the root.
fn paths(code: &str, module: &[String], is_mod_file: bool) -> Vec<Vec<String>> {
    // An inline module (`mod tests { … }`, at the end of a file) is one level deeper: its
    // `super` is the file's module.
    let inner_at = code
        .lines()
        .scan(0, |at, line| {
            let start = *at;
            *at += line.len() + 1;
            Some((start, line.trim_start()))
        })
        .find(|(_, line)| line.starts_with("mod ") && line.trim_end().ends_with('{'))
        .map(|(at, line)| at + line.len());
    if let Some(at) = inner_at {
        let mut inner_module = module.to_vec();
        inner_module.push("inline".into());
        let mut found = paths(
            code[..at].rsplit_once('\n').map_or("", |(head, _)| head),
            module,
            is_mod_file,
        );
        found.extend(
            paths(&code[at..], &inner_module, false)
                .into_iter()
                .filter(|p| p.first().is_none_or(|f| f != "inline")),
        );
        return found;
    }
    let mut found = Vec::new();
    // `use` statements (a line that starts one), possibly over several lines and with groups.
    let mut inline = String::new();
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let body = ["use ", "pub use ", "pub(crate) use ", "pub(super) use "]
            .iter()
            .find_map(|p| trimmed.strip_prefix(p));
        let Some(body) = body else {
            inline.push_str(line);
            inline.push('\n');
            continue;
        };
        let mut tree = body.to_string();
        while !tree.contains(';') {
            match lines.next() {
                Some(more) => {
                    tree.push(' ');
                    tree.push_str(more);
                }
                None => break,
            }
        }
        let tree = tree.split(';').next().unwrap_or("");
        let tree = tree.split_whitespace().collect::<Vec<_>>().join(" ");
        found.extend(expand(&tree));
    }
    // Inline paths: `crate::a::b::C` outside `use`.
    for root in ["crate::", "super::"] {
        let mut text = inline.as_str();
        while let Some(at) = text.find(root) {
            let before = text[..at].chars().last();
            let tail = &text[at..];
            let len = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                found.push(tail[..len].to_string());
            }
            text = &tail[len.max(1)..];
        }
    }
    // `self` is the module itself, `super` its parent (for a mod.rs too: its folder's module).
    let parent = module[..module.len().saturating_sub(1)].to_vec();
    found
        .into_iter()
        .filter_map(|p| {
            let segments: Vec<String> = p.split("::").map(str::to_string).collect();
            match segments.first().map(String::as_str) {
                Some("crate") => Some(segments[1..].to_vec()),
                Some("super") => {
                    let mut up = parent.clone();
                    up.extend(segments[1..].iter().cloned());
                    Some(up)
                }
                Some("self") => {
                    let mut here = module.to_vec();
                    here.extend(segments[1..].iter().cloned());
                    Some(here)
                }
                // A sibling module named bare (`use density::…` in a mod.rs).
                Some(first) if is_mod_file || module.is_empty() => {
                    let mut child = module.to_vec();
                    child.push(first.to_string());
                    Some(
                        child
                            .into_iter()
                            .chain(segments[1..].iter().cloned())
                            .collect(),
                    )
                }
                _ => None,
            }
        })
        .collect()
}

/// The import graph of one crate: file → files it imports (the longest module prefix of
/// each path; the crate root is left out).
fn graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let modules = modules(src);
    let mut edges = BTreeMap::new();
    for (module, file) in &modules {
        let is_mod_file = file
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs");
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        let mut targets = BTreeSet::new();
        for path in paths(&code, module, is_mod_file) {
            let target = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|prefix| modules.contains_key(prefix));
            if let Some(target) = target
                && &target != module
                && !target.is_empty()
            {
                targets.insert(target);
            }
        }
        edges.insert(module.clone(), targets);
    }
    edges
}

/// The first import circle found, as a list of modules.
fn circle(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut loop_: Vec<String> =
                        stack[from..].iter().map(|m| m.join("::")).collect();
                    loop_.push(next.join("::"));
                    return Some(loop_);
                }
                Some(_) => {}
                None => {
                    if let Some(found) = visit(next, edges, state, stack) {
                        return Some(found);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node)
            && let Some(found) = visit(node, edges, &mut state, &mut Vec::new())
        {
            return Some(found);
        }
    }
    None
}

/// Every import that breaks a floor rule, in words.
fn floor_violations(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<String> {
    let floor = |m: &Vec<String>| {
        m.first()
            .and_then(|f| FLOORS.iter().find(|(name, _)| name == f))
            .map(|&(name, level)| (name, level))
    };
    let mut wrong = Vec::new();
    for (from, targets) in edges.iter().filter(|(from, _)| !from.is_empty()) {
        let Some((from_folder, from_level)) = floor(from) else {
            wrong.push(format!("{} is in no floor's folder", from.join("::")));
            continue;
        };
        for to in targets {
            let Some((to_folder, to_level)) = floor(to) else {
                continue;
            };
            let (a, b) = (from.join("::"), to.join("::"));
            if from_folder != to_folder && from_level <= to_level {
                wrong.push(format!(
                    "{a} (floor {from_level}) imports {b} (floor {to_level})"
                ));
            }
            if let Some((_, shared)) = APART.iter().find(|(f, _)| *f == from_folder)
                && from_folder == to_folder
                && from.len() > 1
                && to.len() > 1
                && from[1] != to[1]
                && !shared.contains(&to[1].as_str())
            {
                wrong.push(format!(
                    "{a} imports {b}: members of {from_folder}/ stay apart"
                ));
            }
        }
    }
    wrong
}

fn crate_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

#[test]
fn lab_core_keeps_its_floors() {
    let edges = graph(&crate_src("lab-core"));
    assert!(edges.len() > 40, "read only {} files", edges.len());
    // The reader itself must see the imports it judges.
    let train = &edges[&vec!["training".to_string(), "train".to_string()]];
    assert!(train.contains(&vec!["training".to_string(), "policy".to_string()]));
    let wrong = floor_violations(&edges);
    assert!(
        wrong.is_empty(),
        "imports against the floors:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_import_circles_in_any_crate() {
    for name in ["lab-core", "lab-cli", "lab-wasm"] {
        let edges = graph(&crate_src(name));
        if let Some(found) = circle(&edges) {
            panic!("{name} has an import circle: {}", found.join(" -> "));
        }
    }
}

#[test]
fn the_reader_finds_what_the_rules_forbid() {
    // A made-up house: one circle, one import up a floor, two methods that meet.
    let m = |s: &str| s.split("::").map(str::to_string).collect::<Vec<_>>();
    let mut edges = BTreeMap::new();
    edges.insert(m("base::mask"), [m("training::train")].into());
    edges.insert(m("training::train"), [m("base::mask")].into());
    edges.insert(m("methods::imp"), [m("methods::pai")].into());
    edges.insert(m("methods::pai"), BTreeSet::new());
    edges.insert(m("analyses::lmc"), [m("analyses::error")].into());
    assert!(circle(&edges).is_some());
    let wrong = floor_violations(&edges);
    assert_eq!(wrong.len(), 2, "{wrong:?}");
    // Paths as the code writes them.
    let code = "use crate::a::{b::C, d::{self, E}};\nfn f() { super::x::y(); crate::g::h(); }";
    let found = paths(code, &m("m::n"), false);
    for expected in [
        m("a::b::C"),
        m("a::d"),
        m("a::d::E"),
        m("m::x::y"),
        m("g::h"),
    ] {
        assert!(found.contains(&expected), "{expected:?} not in {found:?}");
    }
}
