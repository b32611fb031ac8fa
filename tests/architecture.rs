//! The workspace's module structure, checked from the source: within each crate, no two modules
//! import each other (directly or round a longer loop), and no module imports from a floor above
//! its own. The floors are declared below, crate by crate, as `docs/ARCHITECTURE.md` draws them;
//! a new top-level module must be given one. Run it alone with `cargo test --test architecture`.
//!
//! A module is a file (`foo.rs`, `foo/mod.rs`, `foo/bar.rs`). An import is any path that starts
//! with `crate::`, `super::` or `self::`, in a `use` or inline, and a `use` of a child module by its
//! bare name. Re-exports (`pub use`) are followed to the module that defines the item, so importing
//! `crate::Money` is an import of `money.rs`, not of `lib.rs`. A `mod child;` declaration is not an
//! import. Code after `#[cfg(test)]` (a file's unit tests) is left out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Each crate's source root, its root file, and its floors, lowest first: a module may import
/// from its own floor or any floor below.
const CRATES: &[(&str, &str, &[&[&str]])] = &[
    (
        "crates/market-core/src",
        "lib.rs",
        &[
            &[
                "envelope", "error", "text", "ids", "money", "names", "status",
            ],
            &[
                "db", "receipt", "provider", "postman", "courier", "market", "keys",
            ],
            &["audit", "queue", "accounts"],
            &["health", "pool", "listings", "catalog"],
            &[
                "tiers",
                "purchases",
                "reports",
                "tiers_file",
                "sellers",
                "seller_keys",
                "seller_xano",
                "connect",
                "letters",
                "webhooks",
            ],
            &["payments", "checkout", "portal", "rotation", "usage"],
            &["upgrades"],
            &["reconcile"],
            &["jobs", "deliverer"],
        ],
    ),
    (
        "crates/market-http/src",
        "lib.rs",
        &[
            &["error", "metrics", "crashpoints", "wire", "intake"],
            &["stripe", "catalog_cache", "limits", "inbox"],
            &["state"],
            &["stripe_events"],
            &["extract", "backfill"],
            &["routes"],
            &["openapi"],
            &["server"],
            &["startup"],
        ],
    ),
    (
        "src",
        "main.rs",
        &[
            &["config", "memory"],
            &["cli", "settings", "telemetry", "sandbox_mode"],
            &["commands"],
        ],
    ),
    // Cycles only: these crates declare no floors.
    ("crates/master-api/src", "lib.rs", &[]),
    ("crates/sandbox/src", "lib.rs", &[]),
    ("crates/testkit/src", "lib.rs", &[]),
    ("crates/market-bench/src", "lib.rs", &[]),
];

type ModPath = Vec<String>;

/// One crate's modules: each file's text (tests cut off) by module path.
struct Crate {
    modules: BTreeMap<ModPath, (PathBuf, String)>,
}

/// An import of one module by another, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: ModPath,
    to: ModPath,
    written: String,
}

#[test]
fn no_module_imports_a_module_that_imports_it_back_or_one_on_a_higher_floor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut report = String::new();
    let mut modules_seen = 0;
    for (src, root_file, floors) in CRATES {
        let krate = Crate::read(&root.join(src), root_file);
        modules_seen += krate.modules.len();
        let edges = krate.edges();
        for cycle in cycles(&krate, &edges) {
            let _ = writeln!(report, "{src}: import cycle:");
            for edge in cycle {
                let _ = writeln!(
                    report,
                    "    {} -> {}  ({})",
                    show(&edge.from),
                    show(&edge.to),
                    edge.written
                );
            }
        }
        if floors.is_empty() {
            continue;
        }
        let floor_of = |module: &str| floors.iter().position(|floor| floor.contains(&module));
        for top in krate.modules.keys().filter(|m| m.len() == 1) {
            if floor_of(&top[0]).is_none() {
                let _ = writeln!(report, "{src}: module `{}` has no floor", top[0]);
            }
        }
        for edge in &edges {
            let (Some(from), Some(to)) = (edge.from.first(), edge.to.first()) else {
                continue;
            };
            if let (Some(f), Some(t)) = (floor_of(from), floor_of(to))
                && t > f
            {
                let _ = writeln!(
                    report,
                    "{src}: `{}` (floor {f}) reaches up to `{}` (floor {t}): {}",
                    show(&edge.from),
                    show(&edge.to),
                    edge.written
                );
            }
        }
    }
    assert!(modules_seen > 80, "only {modules_seen} modules read");
    assert!(report.is_empty(), "\n{report}");
}

/// The unsafe-code lint is denied in the workspace; the one call that needs it (glibc's `mallopt`, before
/// any thread starts) allows it in `src/memory.rs`, and no other file may.
#[test]
fn only_src_memory_rs_may_allow_the_unsafe_lint_the_workspace_denies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lint = concat!("unsafe", "_code");
    let mut allowed = Vec::new();
    let mut stack = vec![root.join("src"), root.join("crates"), root.join("tests")];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files += 1;
                if std::fs::read_to_string(&path).unwrap().contains(lint) {
                    allowed.push(path.strip_prefix(root).unwrap().to_path_buf());
                }
            }
        }
    }
    assert!(files > 200, "only {files} files read");
    assert_eq!(allowed, [PathBuf::from("src/memory.rs")]);
}

/// The checker itself: a two-module loop through a re-export is found, and a parent using its
/// child while the child uses a sibling is not a loop.
#[test]
fn the_checker_finds_a_loop_through_a_re_export_and_nothing_else() {
    let dir = std::env::temp_dir().join(format!("architecture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a;\nmod jobs;\npub use a::Thing;\n").unwrap();
    std::fs::write(
        dir.join("a.rs"),
        "use crate::jobs::run;\npub struct Thing;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("jobs/mod.rs"),
        "mod error;\nmod mint;\npub fn run() { mint::go() }\n",
    )
    .unwrap();
    std::fs::write(dir.join("jobs/error.rs"), "pub struct E;\n").unwrap();
    std::fs::write(
        dir.join("jobs/mint.rs"),
        "use super::error::E;\nuse crate::Thing;\npub fn go() {}\n#[cfg(test)]\nuse crate::jobs::run;\n",
    )
    .unwrap();

    let krate = Crate::read(&dir, "lib.rs");
    let edges = krate.edges();
    let found: BTreeSet<(String, String)> =
        edges.iter().map(|e| (show(&e.from), show(&e.to))).collect();
    let cycles = cycles(&krate, &edges);
    std::fs::remove_dir_all(&dir).unwrap();

    let expected: BTreeSet<(String, String)> = [
        ("(crate root)", "a"),
        ("a", "jobs"),
        ("jobs", "jobs::mint"),
        ("jobs::mint", "jobs::error"),
        ("jobs::mint", "a"),
    ]
    .into_iter()
    .map(|(f, t)| (f.to_owned(), t.to_owned()))
    .collect();
    assert_eq!(found, expected);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    let in_cycle: BTreeSet<String> = cycles[0].iter().map(|e| show(&e.from)).collect();
    assert_eq!(
        in_cycle,
        ["a", "jobs", "jobs::mint"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
}

impl Crate {
    fn read(src: &Path, root_file: &str) -> Self {
        let mut modules = BTreeMap::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let relative = path.strip_prefix(src).unwrap();
                let mut module: ModPath = relative
                    .with_extension("")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if module.last().is_some_and(|m| m == "mod") {
                    module.pop();
                }
                if relative == Path::new(root_file) {
                    module.clear();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                modules.insert(module, (path, without_tests_and_comments(&text)));
            }
        }
        Self { modules }
    }

    /// Every import between two different modules.
    fn edges(&self) -> Vec<Edge> {
        let mut edges = BTreeSet::new();
        for (module, (_, text)) in &self.modules {
            let children: Vec<&str> = self
                .modules
                .keys()
                .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
                .filter_map(|m| m.last().map(String::as_str))
                .collect();
            for written in references(text, &children) {
                let Some(absolute) = self.absolute(module, &written) else {
                    continue;
                };
                let to = self.defining_module(&absolute, 0);
                if &to != module && !to.is_empty() {
                    edges.insert(Edge {
                        from: module.clone(),
                        to,
                        written: written.join("::"),
                    });
                }
            }
        }
        edges.into_iter().collect()
    }

    /// A written path made absolute (from the crate root), or `None` for another crate's.
    fn absolute(&self, module: &ModPath, written: &[String]) -> Option<ModPath> {
        let mut base = module.clone();
        let mut rest = written;
        match rest.first().map(String::as_str) {
            Some("crate" | "$crate") => {
                base.clear();
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            Some("super") => {
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
            }
            Some(child) => {
                let mut path = module.clone();
                path.push(child.to_owned());
                if !self.modules.contains_key(&path) {
                    return None;
                }
            }
            None => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The module an absolute path lands in: the longest module prefix, then through the
    /// re-exports of that module when the rest names an item it only re-exports.
    fn defining_module(&self, path: &[String], depth: usize) -> ModPath {
        let mut module: ModPath = Vec::new();
        for segment in path {
            let mut next = module.clone();
            next.push(segment.clone());
            if self.modules.contains_key(&next) {
                module = next;
            } else {
                break;
            }
        }
        if depth < 8
            && let Some(item) = path.get(module.len())
            && let Some((_, text)) = self.modules.get(&module)
            && let Some(target) = re_exports(text).remove(item)
            && let Some(absolute) = self.absolute(&module, &target)
        {
            return self.defining_module(&absolute, depth + 1);
        }
        module
    }
}

/// `pub use a::b::{C, D as E}` in a module: the names it exports, and the paths they stand for.
fn re_exports(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for statement in use_statements(text).filter(|(public, _)| *public) {
        for path in expand(&statement.1) {
            let (path, alias) = if let Some((path, alias)) = path.split_once(" as ") {
                (path.trim().to_owned(), alias.trim().to_owned())
            } else {
                let name = path.rsplit("::").next().unwrap_or_default().to_owned();
                (path, name)
            };
            if alias != "*" && alias != "self" {
                out.insert(alias, split(&path));
            }
        }
    }
    out
}

/// Every path a module writes that may name one of its crate's modules (`children`: the names of
/// its own child modules, which it may write bare).
fn references(text: &str, children: &[&str]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = use_statements(text)
        .flat_map(|(_, tree)| expand(&tree))
        .map(|path| split(path.split(" as ").next().unwrap_or_default()))
        .collect();
    // Inline paths outside `use` (`crate::reconcile::listing(…)`, `super::execute(…)`).
    let outside_use = strip_use_statements(text);
    let bytes = outside_use.as_bytes();
    let starts: Vec<String> = ["crate", "super", "self"]
        .iter()
        .chain(children)
        .map(|s| format!("{s}::"))
        .collect();
    for start in &starts {
        let start = start.as_str();
        let mut from = 0;
        while let Some(found) = outside_use[from..].find(start) {
            let at = from + found;
            from = at + start.len();
            let follows_ident =
                at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
            let follows_path = at > 1 && &bytes[at - 2..at] == b"::";
            if follows_ident || follows_path {
                continue;
            }
            let end = outside_use[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(outside_use.len(), |e| at + e);
            out.push(split(outside_use[at..end].trim_end_matches(':')));
        }
    }
    out
}

/// The `use` statements of a module: whether each is public (a re-export), and its tree.
fn use_statements(text: &str) -> impl Iterator<Item = (bool, String)> + '_ {
    statements_starting_with_use(text).map(|(start, end)| {
        let before = text[..start].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let tree = text[start + 4..end].trim().to_owned();
        (public, tree)
    })
}

/// Byte ranges of `use …;` statements (from `use` to the semicolon).
fn statements_starting_with_use(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = text.as_bytes();
    let mut from = 0;
    std::iter::from_fn(move || {
        loop {
            let found = text[from..].find("use ")?;
            let at = from + found;
            from = at + 4;
            let starts_word =
                at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
            if !starts_word {
                continue;
            }
            // A statement, not a word in an expression: only whitespace, `pub`, `pub(…)` or a
            // `;`/`}`/`{` may stand before it on its line.
            let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
            let before = text[line_start..at].trim();
            if !(before.is_empty() || before == "pub" || before.starts_with("pub(")) {
                continue;
            }
            let end = at + text[at..].find(';')?;
            from = end;
            return Some((at, end));
        }
    })
}

fn strip_use_statements(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in statements_starting_with_use(text) {
        out.push_str(&text[last..start]);
        last = end;
    }
    out.push_str(&text[last..]);
    out
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (aliases kept as ` as x`).
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree = tree.replace(" ::", "::").replace(":: ", "::");
    let Some(open) = tree.find('{') else {
        return vec![tree.trim().to_owned()];
    };
    let prefix = tree[..open].trim().trim_end_matches("::").to_owned();
    let close = tree.rfind('}').unwrap_or(tree.len());
    let inner = &tree[open + 1..close];
    let mut parts = Vec::new();
    let (mut depth, mut last) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[last..i]);
                last = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[last..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .flat_map(expand)
        .map(|p| {
            if p == "self" {
                prefix.clone()
            } else if prefix.is_empty() {
                p
            } else {
                format!("{prefix}::{p}")
            }
        })
        .collect()
}

fn split(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The file's text without its unit tests (everything from `#[cfg(test)]` on), comments, and
/// string literals (SQL and messages mention `crate::` and `use` in prose).
fn without_tests_and_comments(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let prev_is_ident = i > 0 && is_ident(chars[i - 1]);
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == 'r' && !prev_is_ident && matches!(chars.get(i + 1), Some('#' | '"')) {
            // A raw string: r"…" or r#"…"# with as many hashes at the end as at the start.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\'') is skipped; a lifetime ('a) is kept.
            let literal_end = match (chars.get(i + 1), chars.get(i + 2)) {
                (Some('\\'), _) => (i + 3..chars.len()).find(|&j| chars[j] == '\''),
                (Some(_), Some('\'')) => Some(i + 2),
                _ => None,
            };
            if let Some(end) = literal_end {
                out.push_str("' '");
                i = end + 1;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The import loops: strongly connected components of more than one module (Tarjan), each shown
/// as the edges inside it.
fn cycles(krate: &Crate, edges: &[Edge]) -> Vec<Vec<Edge>> {
    let nodes: Vec<&ModPath> = krate.modules.keys().collect();
    let index_of = |m: &ModPath| nodes.iter().position(|n| *n == m);
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for edge in edges {
        if let (Some(f), Some(t)) = (index_of(&edge.from), index_of(&edge.to)) {
            next[f].push(t);
        }
    }
    let mut state = Tarjan {
        next,
        index: vec![None; nodes.len()],
        low: vec![0; nodes.len()],
        on_stack: vec![false; nodes.len()],
        stack: Vec::new(),
        counter: 0,
        components: Vec::new(),
    };
    for v in 0..nodes.len() {
        if state.index[v].is_none() {
            state.visit(v);
        }
    }
    state
        .components
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|component| {
            let members: BTreeSet<&ModPath> = component.iter().map(|&i| nodes[i]).collect();
            edges
                .iter()
                .filter(|e| members.contains(&e.from) && members.contains(&e.to))
                .cloned()
                .collect()
        })
        .collect()
}

struct Tarjan {
    next: Vec<Vec<usize>>,
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    counter: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.counter);
        self.low[v] = self.counter;
        self.counter += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for w in self.next[v].clone() {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(index) if self.on_stack[w] => self.low[v] = self.low[v].min(index),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

fn show(module: &ModPath) -> String {
    if module.is_empty() {
        "(crate root)".to_owned()
    } else {
        module.join("::")
    }
}
