//! The crate's layout, read from `src/`: imports point one way (no cycle between top-level
//! modules, none between the files of one folder), nothing imports an item defined in
//! `lib.rs`, the import rules of the layout hold, and no file's non-test part grows past its
//! line bound.
//!
//! The rules, from `LAYOUT.md`: `config` imports neither `sink`, `spool`, `runtime`, `handle`,
//! `exit` nor `guard`; `sink` imports neither `config`, `runtime`, `handle`, `guard`, `exit` nor
//! `spool` (the spool wraps the sinks, not the other way round); `protocol` (the encodings)
//! imports neither `sink`, `spool`, `config`, `runtime`, `handle`, `exit` nor `install`; only
//! `install` imports `runtime`, `exit`, `sink` and `config` together, and only `lib.rs`
//! imports `install`.
//!
//! An import is any path into the crate in the code: `use crate::a::b;`, grouped
//! `use crate::{a::b, c}`, `use super::…`, a child module's `use child::…` and inline
//! `crate::a::b(…)` / `super::x` paths. Comments, string literals and `#[cfg(test)]` items are
//! left out: test code may reach anywhere. Within a folder, its root file (`mod.rs`, or
//! `name.rs` beside `name/`) re-exporting a child (`pub use child::X`) is the folder's face,
//! not an import.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The line bound of a file's non-test part.
const MAX_LINES: usize = 600;

/// Files whose non-test part is over [`MAX_LINES`] today, with their bound: it may only
/// shrink (lower it when a file gets shorter; remove the line once it is under 600).
const LINE_EXCEPTIONS: &[(&str, usize)] = &[];

/// `(from, to)`: the top-level module `from` never imports `to`.
const FORBIDDEN: &[(&str, &str)] = &[
    ("config", "sink"),
    ("config", "runtime"),
    ("config", "handle"),
    ("config", "exit"),
    ("config", "guard"),
    ("config", "spool"),
    ("sink", "config"),
    ("sink", "runtime"),
    ("sink", "handle"),
    ("sink", "guard"),
    ("sink", "exit"),
    ("sink", "spool"),
    ("protocol", "sink"),
    ("protocol", "spool"),
    ("protocol", "config"),
    ("protocol", "runtime"),
    ("protocol", "handle"),
    ("protocol", "exit"),
    ("protocol", "install"),
];

/// Only this module imports all of these together.
const COMPOSITION_ROOT: (&str, &[&str]) = ("install", &["runtime", "exit", "sink", "config"]);

/// Only `lib.rs` imports the composition root.
const IMPORTED_BY_LIB_ONLY: &str = "install";

#[test]
fn imports_point_one_way() {
    let crate_ = Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let problems = crate_.problems();
    let graph: Vec<String> = crate_
        .top_edges()
        .into_iter()
        .map(|(a, b)| format!("{a} -> {b}"))
        .collect();
    assert!(
        problems.is_empty(),
        "the layout is broken:\n  {}\n\nthe imports between top-level modules:\n  {}",
        problems.join("\n  "),
        graph.join("\n  ")
    );
}

#[test]
fn no_file_outgrows_its_bound() {
    let crate_ = Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut problems = Vec::new();
    for file in &crate_.files {
        let bound = bound_of(&file.rel);
        if file.lines > bound {
            problems.push(format!(
                "{}: {} lines outside tests, the bound is {bound}",
                file.rel, file.lines
            ));
        }
    }
    for (rel, _) in LINE_EXCEPTIONS {
        if !crate_.files.iter().any(|f| f.rel == *rel) {
            problems.push(format!("{rel} is in LINE_EXCEPTIONS but no longer exists"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn bound_of(rel: &str) -> usize {
    LINE_EXCEPTIONS
        .iter()
        .find(|(r, _)| *r == rel)
        .map_or(MAX_LINES, |(_, n)| *n)
}

/// The checker itself, on small crates written here: each rule is seen broken.
#[test]
fn the_checker_sees_each_kind_of_break() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("lib.rs", "mod a; mod b;"),
                ("a.rs", "use crate::b::X;"),
                ("b.rs", "pub struct X; fn f() { crate::a::g(); }"),
            ],
            "cycle between top-level modules: a -> b -> a",
        ),
        (
            &[
                ("lib.rs", "mod a; mod b;"),
                ("a.rs", "use crate::{c::Z, b::{self, X}};"),
                ("b.rs", "use crate::{a};"),
            ],
            "cycle between top-level modules: a -> b -> a",
        ),
        (
            &[
                ("lib.rs", "mod f;"),
                ("f/mod.rs", "mod x; mod y; pub use x::A;"),
                ("f/x.rs", "use super::y::B; pub struct A;"),
                ("f/y.rs", "pub struct B; fn g() -> super::x::A { todo!() }"),
            ],
            "cycle between the files of f/: f/x.rs -> f/y.rs -> f/x.rs",
        ),
        (
            &[
                ("lib.rs", "mod a; static HANDLE: u8 = 0; pub use a::X;"),
                ("a.rs", "pub struct X; fn f() -> u8 { crate::HANDLE }"),
            ],
            "a.rs imports crate::HANDLE, an item of lib.rs",
        ),
        (
            &[
                ("lib.rs", "mod config; mod sink;"),
                ("config.rs", "use crate::sink::Y;"),
                ("sink.rs", "pub struct Y;"),
            ],
            "config.rs imports sink (crate::sink::Y)",
        ),
        (
            &[
                ("lib.rs", "mod protocol; mod spool;"),
                ("protocol/mod.rs", "mod group;"),
                ("protocol/group.rs", "fn f() { crate::spool::g(); }"),
                ("spool.rs", "pub fn g() {}"),
            ],
            "protocol/group.rs imports spool (crate::spool::g)",
        ),
    ];
    for (files, expected) in cases {
        let crate_ = Crate::from_texts(files);
        let problems = crate_.problems();
        assert!(
            problems.iter().any(|p| p == expected),
            "expected {expected:?} in {problems:?}"
        );
    }
    // Not breaks: a re-export through lib.rs names the module it comes from; a path in a
    // comment, a string or a test is no import.
    let crate_ = Crate::from_texts(&[
        ("lib.rs", "mod a; mod b; pub use b::Y;"),
        ("a.rs", "use crate::Y; // crate::b::x\n"),
        (
            "b.rs",
            "pub struct Y; const S: &str = \"crate::a::z\";\n/* crate::a */\n\
             #[cfg(test)]\nmod tests { use crate::a::Z; }\n",
        ),
    ]);
    assert_eq!(crate_.problems(), Vec::<String>::new());
    assert_eq!(
        crate_.top_edges(),
        BTreeSet::from([("a".to_owned(), "b".to_owned())])
    );
    assert_eq!(
        crate_.files.iter().find(|f| f.rel == "b.rs").unwrap().lines,
        2
    );
}

struct File {
    /// The path below `src/`, with `/`.
    rel: String,
    /// The module path: `[]` for lib.rs, `["sink", "http"]` for sink/http.rs.
    module: Vec<String>,
    /// The code without comments, literals and `#[cfg(test)]` items.
    code: String,
    /// Lines of the non-test part.
    lines: usize,
    /// Whether the file is a folder's root (`mod.rs`, or `name.rs` beside `name/`).
    folder_root: bool,
}

struct Crate {
    files: Vec<File>,
}

/// An import that leads to another file: the files (indices), the path, whether it is a
/// re-export.
struct Edge {
    from: usize,
    to: usize,
    path: Vec<String>,
    reexport: bool,
}

/// One import: the file it is in, the path as written (resolved to `crate::…`), whether it
/// is a re-export (`pub use`).
struct Import {
    from: usize,
    path: Vec<String>,
    reexport: bool,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut paths = Vec::new();
        collect(src, &mut paths);
        let texts: Vec<(String, String)> = paths
            .iter()
            .map(|p| {
                let rel = p
                    .strip_prefix(src)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                (rel, fs::read_to_string(p).unwrap())
            })
            .collect();
        let refs: Vec<(&str, &str)> = texts
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        Crate::from_texts(&refs)
    }

    fn from_texts(texts: &[(&str, &str)]) -> Crate {
        let rels: BTreeSet<&str> = texts.iter().map(|(r, _)| *r).collect();
        let mut files = Vec::new();
        let mut test_only = BTreeSet::new();
        for (rel, text) in texts {
            let clean = strip_comments_and_literals(text);
            // `#[cfg(test)] mod name;` makes that file test code.
            for name in cfg_test_modules(&clean) {
                let dir = folder_dir(rel);
                test_only.insert(format!("{dir}{name}.rs"));
                test_only.insert(format!("{dir}{name}/mod.rs"));
            }
            let code = strip_cfg_test(&clean);
            let lines = strip_cfg_test_lines(text);
            let module = module_of(rel);
            let folder_root = rel.ends_with("mod.rs")
                || rels
                    .iter()
                    .any(|r| r.starts_with(&format!("{}/", rel.trim_end_matches(".rs"))));
            files.push(File {
                rel: rel.to_string(),
                module,
                code,
                lines,
                folder_root: folder_root && *rel != "lib.rs",
            });
        }
        files.retain(|f| !test_only.contains(&f.rel));
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Crate { files }
    }

    fn module_index(&self, module: &[String]) -> Option<usize> {
        self.files.iter().position(|f| f.module == module)
    }

    fn imports(&self) -> Vec<Import> {
        let mut out = Vec::new();
        for (i, file) in self.files.iter().enumerate() {
            let children: BTreeSet<String> = self
                .files
                .iter()
                .filter(|f| {
                    f.module.len() == file.module.len() + 1 && f.module.starts_with(&file.module)
                })
                .map(|f| f.module.last().unwrap().clone())
                .collect();
            for (raw, reexport) in paths_in(&file.code) {
                let Some(path) = absolute(&raw, &file.module, &children) else {
                    continue;
                };
                out.push(Import {
                    from: i,
                    path,
                    reexport,
                });
            }
        }
        out
    }

    /// lib.rs's re-exports: name -> the path it comes from.
    fn root_reexports(&self) -> BTreeMap<String, Vec<String>> {
        let mut map = BTreeMap::new();
        for import in self.imports() {
            if self.files[import.from].module.is_empty() && import.reexport {
                if let Some(last) = import.path.last() {
                    map.insert(last.clone(), import.path.clone());
                }
            }
        }
        map
    }

    /// Where `path` leads: the file of its longest module prefix, after lib.rs's re-exports.
    /// `Err(item)` for an item defined in lib.rs.
    fn target(
        &self,
        path: &[String],
        reexports: &BTreeMap<String, Vec<String>>,
    ) -> Result<usize, String> {
        let mut path = path.to_vec();
        if path.len() >= 2 && self.module_index(&path[1..2]).is_none() {
            match reexports.get(&path[1]) {
                Some(to) => {
                    let mut resolved = to.clone();
                    resolved.extend(path[2..].iter().cloned());
                    path = resolved;
                }
                None if path[1] == "*" => {}
                None => return Err(path[1].clone()),
            }
        }
        (1..=path.len())
            .rev()
            .find_map(|n| self.module_index(&path[1..n]))
            .ok_or_else(|| path.join("::"))
    }

    /// (from file, to file, path) for every import that leads to another file.
    fn edges(&self) -> (Vec<Edge>, Vec<String>) {
        let reexports = self.root_reexports();
        let mut edges = Vec::new();
        let mut problems = Vec::new();
        for import in self.imports() {
            let from = &self.files[import.from];
            match self.target(&import.path, &reexports) {
                Ok(to) if to != import.from => {
                    edges.push(Edge {
                        from: import.from,
                        to,
                        path: import.path,
                        reexport: import.reexport,
                    });
                }
                Ok(_) => {}
                Err(item) if !from.module.is_empty() => problems.push(format!(
                    "{} imports crate::{item}, an item of lib.rs",
                    from.rel
                )),
                Err(_) => {}
            }
        }
        (edges, problems)
    }

    fn top_edges(&self) -> BTreeSet<(String, String)> {
        let (edges, _) = self.edges();
        edges
            .iter()
            .filter_map(|e| {
                let (a, b) = (&self.files[e.from].module, &self.files[e.to].module);
                (!a.is_empty() && !b.is_empty() && a[0] != b[0])
                    .then(|| (a[0].clone(), b[0].clone()))
            })
            .collect()
    }

    fn problems(&self) -> Vec<String> {
        let (edges, mut problems) = self.edges();
        // Top-level modules.
        let top = self.top_edges();
        problems.extend(
            cycles(&top)
                .into_iter()
                .map(|c| format!("cycle between top-level modules: {c}")),
        );
        // The files of each folder.
        let mut folders: BTreeMap<Vec<String>, BTreeSet<(String, String)>> = BTreeMap::new();
        for e in &edges {
            let (a, b) = (&self.files[e.from], &self.files[e.to]);
            let (fa, fb) = (folder_of(a), folder_of(b));
            if fa.is_empty() || fa != fb || (e.reexport && a.folder_root) {
                continue;
            }
            folders
                .entry(fa)
                .or_default()
                .insert((a.rel.clone(), b.rel.clone()));
        }
        for (folder, edges) in &folders {
            for c in cycles(edges) {
                problems.push(format!(
                    "cycle between the files of {}/: {c}",
                    folder.join("/")
                ));
            }
        }
        // The rules.
        let mut imports_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for e in &edges {
            let (a, b) = (&self.files[e.from], &self.files[e.to]);
            if b.module.is_empty() {
                continue;
            }
            let to_top = &b.module[0];
            if a.module.is_empty() {
                imports_of
                    .entry(String::new())
                    .or_default()
                    .insert(to_top.clone());
                continue;
            }
            let from_top = &a.module[0];
            imports_of
                .entry(from_top.clone())
                .or_default()
                .insert(to_top.clone());
            if FORBIDDEN.contains(&(from_top.as_str(), to_top.as_str())) {
                problems.push(format!(
                    "{} imports {to_top} ({})",
                    a.rel,
                    e.path.join("::")
                ));
            }
            if to_top == IMPORTED_BY_LIB_ONLY && from_top != to_top {
                problems.push(format!(
                    "{} imports {to_top}, which only lib.rs imports",
                    a.rel
                ));
            }
        }
        let (root, together) = COMPOSITION_ROOT;
        for (module, imported) in &imports_of {
            if module.is_empty() || module == root {
                continue;
            }
            if together
                .iter()
                .all(|m| imported.contains(*m) || module == m)
            {
                problems.push(format!(
                    "{module} imports {} together, as only {root} does",
                    together.join(", ")
                ));
            }
        }
        problems.sort();
        problems.dedup();
        problems
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(rel: &str) -> Vec<String> {
    let stem = rel.trim_end_matches(".rs");
    if stem == "lib" {
        return Vec::new();
    }
    let mut parts: Vec<String> = stem.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The directory (with a trailing `/`, or empty) that a file's `mod name;` looks in.
fn folder_dir(rel: &str) -> String {
    if rel == "lib.rs" {
        String::new()
    } else if let Some(dir) = rel.strip_suffix("mod.rs") {
        dir.to_owned()
    } else {
        format!("{}/", rel.trim_end_matches(".rs"))
    }
}

/// The folder a file belongs to: its own module for a folder's root, else its parent's;
/// empty for files directly in `src/`.
fn folder_of(file: &File) -> Vec<String> {
    if file.folder_root {
        file.module.clone()
    } else if file.module.len() > 1 {
        file.module[..file.module.len() - 1].to_vec()
    } else {
        Vec::new()
    }
}

/// Every elementary cycle found by a depth-first search, each once, as `a -> b -> a`.
fn cycles(edges: &BTreeSet<(String, String)>) -> Vec<String> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        next.entry(a).or_default().push(b);
    }
    let mut found = BTreeSet::new();
    for start in next.keys() {
        let mut stack = vec![(*start, vec![*start])];
        while let Some((node, path)) = stack.pop() {
            for &n in next.get(node).into_iter().flatten() {
                if n == *start {
                    let mut cycle = path.clone();
                    // One spelling per cycle: starting from its least node.
                    let least = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap();
                    cycle.rotate_left(least);
                    let first = cycle[0];
                    cycle.push(first);
                    found.insert(cycle.join(" -> "));
                } else if !path.contains(&n) && n > *start {
                    let mut p = path.clone();
                    p.push(n);
                    stack.push((n, p));
                }
            }
        }
    }
    found.into_iter().collect()
}

/// The code with comments removed and string and char literals emptied; lines are kept.
fn strip_comments_and_literals(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        if at(0) == '/' && at(1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if at(0) == '/' && at(1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if (at(0) == 'r' || (at(0) == 'b' && at(1) == 'r')) && !prev_is_ident(&c, i) && {
            let s = if at(0) == 'b' { 2 } else { 1 };
            let mut k = s;
            while at(k) == '#' {
                k += 1;
            }
            at(k) == '"'
        } {
            // A raw string: r"…", r#"…"#, br"…".
            i += if at(0) == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while c[i] == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
            while i < c.len() {
                if c[i] == '"' && (0..hashes).all(|h| c.get(i + 1 + h) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                if c[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
        } else if at(0) == '"' {
            i += 1;
            out.push_str("\"\"");
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                if c.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
        } else if at(0) == '\'' && (at(2) == '\'' || (at(1) == '\\' && !prev_is_ident(&c, i))) {
            // A char literal ('x', '\n', '\u{7f}'); a lifetime ('a) is kept.
            i += 1;
            while i < c.len() && c[i] != '\'' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(c: &[char], i: usize) -> bool {
    i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')
}

/// The names of `#[cfg(test)] mod name;` declarations.
fn cfg_test_modules(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        rest = &rest[at + "#[cfg(test)]".len()..];
        let item = rest.trim_start();
        if let Some(decl) = item.strip_prefix("mod ") {
            let name: String = decl
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if decl[name.len()..].trim_start().starts_with(';') {
                out.push(name);
            }
        }
    }
    out
}

/// The byte ranges of `#[cfg(test)]` items in cleaned code: from the attribute to the item's
/// `;` or its closing brace.
fn cfg_test_ranges(code: &str) -> Vec<(usize, usize)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]") {
        let start = from + at;
        let mut i = start + "#[cfg(test)]".len();
        let mut depth = 0usize;
        let mut brackets = 0usize;
        while i < bytes.len() {
            match bytes[i] {
                b'[' => brackets += 1,
                b']' => brackets = brackets.saturating_sub(1),
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                b';' if depth == 0 && brackets == 0 => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        out.push((start, i));
        from = i;
    }
    out
}

fn strip_cfg_test(code: &str) -> String {
    let mut out = String::new();
    let mut last = 0;
    for (a, b) in cfg_test_ranges(code) {
        out.push_str(&code[last..a]);
        last = b;
    }
    out.push_str(&code[last..]);
    out
}

/// The lines of a file outside its `#[cfg(test)]` items (blank lines and comments count).
fn strip_cfg_test_lines(text: &str) -> usize {
    let clean = strip_comments_and_literals(text);
    let total = clean.lines().count();
    let test: usize = cfg_test_ranges(&clean)
        .into_iter()
        .map(|(a, b)| clean[a..b].lines().count())
        .sum();
    total - test
}

#[derive(Debug, PartialEq, Clone)]
enum Token {
    Ident(String),
    Colons,
    Open,
    Close,
    Comma,
    Star,
    Semi,
    Other,
}

fn tokens(code: &str) -> Vec<Token> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(c[start..i].iter().collect()));
            continue;
        }
        out.push(match ch {
            ':' if c.get(i + 1) == Some(&':') => {
                i += 1;
                Token::Colons
            }
            '{' => Token::Open,
            '}' => Token::Close,
            ',' => Token::Comma,
            '*' => Token::Star,
            ';' => Token::Semi,
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            _ => Token::Other,
        });
        i += 1;
    }
    out
}

/// Every path in the code (as written) that starts at `crate`, `super`, `self` or a name,
/// with whether it comes from a `pub use`. Paths of `use` trees are expanded; other code
/// yields the paths that start with `crate::`, `super::` or `self::`.
fn paths_in(code: &str) -> Vec<(Vec<String>, bool)> {
    let t = tokens(code);
    let mut out = Vec::new();
    // Inline `mod name { … }`: (name, the brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let within = |inline: &Vec<(String, usize)>, path: Vec<String>| -> Vec<String> {
        match path.first().map(String::as_str) {
            Some("self" | "super") if !inline.is_empty() => {
                let mut p: Vec<String> = inline.iter().map(|(n, _)| n.clone()).collect();
                let mut rest = &path[..];
                if rest[0] == "self" {
                    rest = &rest[1..];
                }
                while rest.first().is_some_and(|s| s == "super") && !p.is_empty() {
                    p.pop();
                    rest = &rest[1..];
                }
                let mut out = vec!["self".to_owned()];
                out.extend(p);
                out.extend(rest.iter().cloned());
                out
            }
            _ => path,
        }
    };
    let mut i = 0;
    while i < t.len() {
        match &t[i] {
            Token::Open => depth += 1,
            Token::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            Token::Ident(m) if m == "mod" => {
                if let (Some(Token::Ident(name)), Some(Token::Open)) = (t.get(i + 1), t.get(i + 2))
                {
                    inline.push((name.clone(), depth + 1));
                }
            }
            _ => {}
        }
        if t[i] == Token::Ident("use".into()) {
            let reexport = is_pub_before(&t, i);
            let end = (i..t.len())
                .find(|&k| t[k] == Token::Semi)
                .unwrap_or(t.len());
            let mut k = i + 1;
            let mut paths = Vec::new();
            use_tree(&t[..end], &mut k, Vec::new(), &mut paths);
            out.extend(paths.into_iter().map(|p| (within(&inline, p), reexport)));
            i = end;
            continue;
        }
        if let Token::Ident(name) = &t[i] {
            let starts = matches!(name.as_str(), "crate" | "super" | "self")
                && t.get(i + 1) == Some(&Token::Colons)
                && !(i >= 1 && t[i - 1] == Token::Colons);
            if starts {
                let mut path = vec![name.clone()];
                let mut k = i + 1;
                while t.get(k) == Some(&Token::Colons) {
                    match t.get(k + 1) {
                        Some(Token::Ident(s)) => {
                            path.push(s.clone());
                            k += 2;
                        }
                        Some(Token::Open) => {
                            // `crate::{a, b}` outside a `use`, e.g. in a `pub(crate)`.
                            break;
                        }
                        _ => break,
                    }
                }
                if path.len() > 1 && !is_visibility(&t, i) {
                    out.push((within(&inline, path), false));
                }
                i = k;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Whether the token at `i` is `crate`/`super`/`self` inside `pub(…)` or `pub(in …)`.
fn is_visibility(t: &[Token], i: usize) -> bool {
    i >= 2 && t[i - 1] == Token::Other && t[i - 2] == Token::Ident("pub".into())
        || i >= 3 && t[i - 1] == Token::Ident("in".into()) && t[i - 3] == Token::Ident("pub".into())
}

/// Whether the `use` at `i` is preceded by `pub` or `pub(…)`.
fn is_pub_before(t: &[Token], i: usize) -> bool {
    let pub_ = Token::Ident("pub".into());
    if i >= 1 && t[i - 1] == pub_ {
        return true;
    }
    // pub ( crate ) use  /  pub ( super ) use  /  pub ( in path ) use
    (2..=8).any(|back| i >= back && t[i - back] == pub_ && t[i - back + 1] == Token::Other)
}

/// Expands the use tree at `t[*k]` under `prefix` into full paths.
fn use_tree(t: &[Token], k: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        match t.get(*k) {
            Some(Token::Colons) => *k += 1,
            Some(Token::Ident(s)) if s == "as" => {
                *k += 2;
                out.push(path);
                return;
            }
            Some(Token::Ident(s)) => {
                if s == "self" && !path.is_empty() {
                    // `a::{self}` is `a`.
                } else {
                    path.push(s.clone());
                }
                *k += 1;
            }
            Some(Token::Star) => {
                *k += 1;
                path.push("*".into());
                out.push(path);
                return;
            }
            Some(Token::Open) => {
                *k += 1;
                loop {
                    match t.get(*k) {
                        Some(Token::Close) => {
                            *k += 1;
                            return;
                        }
                        Some(Token::Comma) => *k += 1,
                        None => return,
                        _ => use_tree(t, k, path.clone(), out),
                    }
                }
            }
            _ => {
                if !path.is_empty() {
                    out.push(path);
                }
                return;
            }
        }
    }
}

/// `raw` as a `crate::…` path, seen from `module` (with its child modules `children`); `None`
/// for a path that leaves the crate (`std::…`, a dependency).
fn absolute(raw: &[String], module: &[String], children: &BTreeSet<String>) -> Option<Vec<String>> {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = raw;
    match rest.first()?.as_str() {
        "crate" => {
            base.clear();
            rest = &rest[1..];
        }
        "self" => rest = &rest[1..],
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        first if children.contains(first) => {}
        _ => return None,
    }
    let mut path = vec!["crate".to_owned()];
    path.extend(base);
    path.extend(rest.iter().cloned());
    Some(path)
}
