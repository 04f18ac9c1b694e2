//! Structure: no module imports another that imports it back.
//!
//! Every `.rs` file under a crate's `src/` is one module (`lib.rs`/`main.rs` is the
//! crate root, `a.rs` and `a/mod.rs` are `a`, `a/b.rs` is `a::b`). An edge runs from
//! a file to each module it names through `crate::`, `self::`, `super::`, a child
//! module or a module brought in by `use`, both in `use` trees and in paths written
//! in code; the longest prefix of a path that names a module file is the target.
//! `mod child;` itself is containment, not an edge; other crates (`pacer_projections::`)
//! are ignored, since Cargo keeps crate dependencies one-way. Comments, doc comments
//! and literals are blanked before scanning, and `#[cfg(test)]` items (the
//! `mod tests { use super::*; }` blocks and `#[cfg(test)] mod tests;` files) are
//! skipped. The strongly connected components of that graph with more than one file
//! are the cycles; the test fails naming each edge inside them and the names that tie
//! the two files together, which is what has to move to break the cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------
// The check on the real crates.
// ---------------------------------------------------------------------------------

const CRATES: [&str; 3] = ["projections", "engine", "cli"];

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ sits in the workspace")
        .to_path_buf();
    let mut report = String::new();
    let mut count = 0;
    for krate in CRATES {
        let files = read_sources(&root, krate);
        assert!(
            files.len() > 1,
            "found no sources under {krate}/src: the check would pass vacuously"
        );
        let cycles = find_cycles(&files);
        for cycle in &cycles {
            count += 1;
            report.push_str(&format!("\ncycle {count} in {krate}/src:\n{cycle}"));
        }
    }
    assert!(
        count == 0,
        "found {count} module cycle(s): no module may import another that imports it \
         back.\nEach edge below is `importer -> imported: names (lines in the importer)`; \
         break a cycle by moving the names of one edge into a module both sides can \
         import, or by having the parent pass them down instead of the child reaching \
         back up.\n{report}"
    );
}

/// Every `.rs` file under `<root>/<krate>/src`, as (`<krate>/src/...`, contents),
/// sorted by path so the report is stable.
fn read_sources(root: &Path, krate: &str) -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&root.join(krate).join("src"), &mut paths);
    let mut files: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap();
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            (rel, text)
        })
        .collect();
    files.sort();
    files
}

// ---------------------------------------------------------------------------------
// The analyser: (path, contents) pairs of one crate in, cycles out.
// ---------------------------------------------------------------------------------

/// One strongly connected component of more than one file.
#[derive(Debug)]
struct Cycle {
    files: Vec<String>,
    /// (importer, imported, name -> lines in the importer).
    edges: Vec<(String, String, BTreeMap<String, BTreeSet<usize>>)>,
}

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  files: {}", self.files.join(", "))?;
        for (from, to, names) in &self.edges {
            let names: Vec<String> = names
                .iter()
                .map(|(name, lines)| {
                    let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                    format!("{name} ({})", lines.join(", "))
                })
                .collect();
            writeln!(f, "  {from} -> {to}: {}", names.join(", "))?;
        }
        Ok(())
    }
}

type Module = Vec<String>;

/// The module a file is, from its path below `src/`; `None` for paths not under `src/`.
fn module_of(path: &str) -> Option<Module> {
    let parts: Vec<&str> = path.split('/').collect();
    let src = parts.iter().position(|p| *p == "src")?;
    let mut module: Module = parts[src + 1..].iter().map(|p| p.to_string()).collect();
    let last = module.pop()?;
    let stem = last.strip_suffix(".rs")?;
    let is_root = module.is_empty() && (stem == "lib" || stem == "main");
    if !is_root && stem != "mod" {
        module.push(stem.to_string());
    }
    Some(module)
}

/// Finds the cycles among the files of one crate. Paths look like `<crate>/src/a/b.rs`
/// (anything before the `src` component is kept only for the report).
fn find_cycles(files: &[(String, String)]) -> Vec<Cycle> {
    // Lex every file and find the modules that exist only under `#[cfg(test)]`.
    let mut parsed: Vec<(String, Module, Vec<Token>)> = Vec::new();
    let mut test_modules: Vec<Module> = Vec::new();
    for (path, text) in files {
        let Some(module) = module_of(path) else {
            continue;
        };
        let (tokens, test_mods) = without_test_items(tokenize(&strip(text)));
        for name in test_mods {
            let mut m = module.clone();
            m.push(name);
            test_modules.push(m);
        }
        parsed.push((path.clone(), module, tokens));
    }
    parsed.retain(|(_, m, _)| !test_modules.iter().any(|t| m.starts_with(t)));

    let modules: BTreeMap<Module, usize> = parsed
        .iter()
        .enumerate()
        .map(|(i, (_, m, _))| (m.clone(), i))
        .collect();

    // Edges, with the names that make them.
    let mut edges: BTreeMap<(usize, usize), BTreeMap<String, BTreeSet<usize>>> = BTreeMap::new();
    for (from, (_, module, tokens)) in parsed.iter().enumerate() {
        for (target, name, line) in references(module, tokens, &modules) {
            let to = modules[&target];
            if to != from {
                edges
                    .entry((from, to))
                    .or_default()
                    .entry(name)
                    .or_default()
                    .insert(line);
            }
        }
    }

    let mut graph = vec![Vec::new(); parsed.len()];
    for &(from, to) in edges.keys() {
        graph[from].push(to);
    }
    let mut cycles = Vec::new();
    for mut component in strongly_connected(&graph) {
        if component.len() < 2 {
            continue;
        }
        component.sort();
        let inside: BTreeSet<usize> = component.iter().copied().collect();
        cycles.push(Cycle {
            files: component.iter().map(|&i| parsed[i].0.clone()).collect(),
            edges: edges
                .iter()
                .filter(|((a, b), _)| inside.contains(a) && inside.contains(b))
                .map(|((a, b), names)| (parsed[*a].0.clone(), parsed[*b].0.clone(), names.clone()))
                .collect(),
        });
    }
    cycles.sort_by(|a, b| a.files.cmp(&b.files));
    cycles
}

/// Tarjan's algorithm, recursive (the graphs are a few dozen files).
fn strongly_connected(graph: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'g> {
        graph: &'g [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.graph[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let n = graph.len();
    let mut s = State {
        graph,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

// ---------------------------------------------------------------------------------
// Lexing: blank comments and literals, then split into tokens.
// ---------------------------------------------------------------------------------

/// The source with comments (doc comments too), string, byte-string, raw-string and
/// char literals replaced by spaces; newlines are kept so lines still count.
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let n = c.len();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, from: usize, to: usize| {
        for &ch in &c[from..to.min(n)] {
            out.push(if ch == '\n' { '\n' } else { ' ' });
        }
    };
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < n {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        // Line comments, `//`, `///` and `//!`.
        if ch == '/' && next == Some('/') {
            let mut j = i;
            while j < n && c[j] != '\n' {
                j += 1;
            }
            blank(&mut out, i, j);
            i = j;
            continue;
        }
        // Block comments, which nest.
        if ch == '/' && next == Some('*') {
            let mut depth = 0;
            let mut j = i;
            while j < n {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
            continue;
        }
        let after_ident = i > 0 && ident(c[i - 1]);
        // Raw strings: r"..", r#".."#, br"..".
        if !after_ident && (ch == 'r' || (ch == 'b' && next == Some('r'))) {
            let mut j = i + if ch == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) == Some(&'"') {
                j += 1;
                while j < n {
                    if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                blank(&mut out, i, j);
                i = j;
                continue;
            }
        }
        // Strings and byte strings (the `b` prefix is left as a stray letter).
        if ch == '"' {
            let mut j = i + 1;
            while j < n && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
            continue;
        }
        // Char literals; a quote that starts neither is a lifetime or label.
        if ch == '\'' {
            if next == Some('\\') {
                let mut j = i + 3;
                while j < n && c[j] != '\'' {
                    j += 1;
                }
                blank(&mut out, i, j + 1);
                i = j + 1;
                continue;
            }
            if c.get(i + 2) == Some(&'\'') {
                blank(&mut out, i, i + 3);
                i += 3;
                continue;
            }
        }
        out.push(ch);
        i += 1;
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

fn tokenize(stripped: &str) -> Vec<Token> {
    let c: Vec<char> = stripped.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            out.push(Token {
                tok: Tok::Ident(word),
                line,
            });
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(Token {
                tok: Tok::Sep,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    out
}

fn is_ident(t: Option<&Token>, word: &str) -> bool {
    matches!(t, Some(Token { tok: Tok::Ident(w), .. }) if w == word)
}

fn is_punct(t: Option<&Token>, ch: char) -> bool {
    matches!(t, Some(Token { tok: Tok::Punct(p), .. }) if *p == ch)
}

/// The index just past the bracketed group opening at `open` (`(`, `[` or `{`).
fn close_of(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// Drops items under a bare `#[cfg(test)]` (inline `mod tests { .. }`, test-only
/// functions and uses); returns the rest and the names of `#[cfg(test)] mod x;`
/// declarations, whose files are test code too.
fn without_test_items(tokens: Vec<Token>) -> (Vec<Token>, Vec<String>) {
    const ITEM_WORDS: [&str; 14] = [
        "pub",
        "mod",
        "fn",
        "use",
        "impl",
        "struct",
        "enum",
        "trait",
        "const",
        "static",
        "type",
        "unsafe",
        "async",
        "macro_rules",
    ];
    let pattern = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let mut out = Vec::with_capacity(tokens.len());
    let mut test_mods = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let matches = tokens.len() >= i + pattern.len()
            && tokens[i..i + pattern.len()]
                .iter()
                .zip(&pattern)
                .all(|(t, p)| t.tok == *p);
        if !matches {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        // Skip further attributes, then see whether an item follows.
        let mut j = i + pattern.len();
        while is_punct(tokens.get(j), '#') && is_punct(tokens.get(j + 1), '[') {
            j = close_of(&tokens, j + 1);
        }
        let starts_item = matches!(&tokens.get(j).map(|t| &t.tok),
            Some(Tok::Ident(w)) if ITEM_WORDS.contains(&w.as_str()));
        if !starts_item {
            // A test-only field or statement: keep it, it is harmless.
            i += pattern.len();
            continue;
        }
        // `#[cfg(test)] mod name;` names a test file.
        let mut k = j;
        if is_ident(tokens.get(k), "pub") {
            k += 1;
            if is_punct(tokens.get(k), '(') {
                k = close_of(&tokens, k);
            }
        }
        if is_ident(tokens.get(k), "mod") && is_punct(tokens.get(k + 2), ';') {
            if let Some(Token {
                tok: Tok::Ident(name),
                ..
            }) = tokens.get(k + 1)
            {
                test_mods.push(name.clone());
            }
        }
        // The item ends at a `;` outside brackets or with its first `{ .. }` body.
        let mut depth = 0usize;
        let mut end = tokens.len();
        let mut m = j;
        while m < tokens.len() {
            match tokens[m].tok {
                Tok::Punct(';') if depth == 0 => {
                    end = m + 1;
                    break;
                }
                Tok::Punct('{') if depth == 0 => {
                    end = close_of(&tokens, m);
                    break;
                }
                Tok::Punct('(' | '[') => depth += 1,
                Tok::Punct(')' | ']') => depth = depth.saturating_sub(1),
                _ => {}
            }
            m += 1;
        }
        i = end;
    }
    (out, test_mods)
}

// ---------------------------------------------------------------------------------
// References: `use` trees and paths in code, resolved to module files.
// ---------------------------------------------------------------------------------

/// One leaf of a `use` tree: the full path, the name it binds (`None` for a glob) and
/// its line.
struct UseLeaf {
    path: Vec<String>,
    binding: Option<String>,
    line: usize,
}

/// Parses the use tree starting at `*i` under `prefix`, pushing its leaves.
fn parse_use_tree(tokens: &[Token], i: &mut usize, prefix: Vec<String>, out: &mut Vec<UseLeaf>) {
    let mut path = prefix;
    if path.is_empty() && matches!(tokens.get(*i).map(|t| &t.tok), Some(Tok::Sep)) {
        // `use ::name::..`: an external crate, never a module here.
        path.push("::".into());
        *i += 1;
    }
    while let Some(token) = tokens.get(*i) {
        let line = token.line;
        match &token.tok {
            Tok::Ident(name) => {
                *i += 1;
                if matches!(tokens.get(*i).map(|t| &t.tok), Some(Tok::Sep)) {
                    path.push(name.clone());
                    *i += 1;
                    continue;
                }
                let mut binding = name.clone();
                if name == "self" {
                    binding = path.last().cloned().unwrap_or_else(|| "self".into());
                } else {
                    path.push(name.clone());
                }
                if is_ident(tokens.get(*i), "as") {
                    if let Some(Token {
                        tok: Tok::Ident(alias),
                        ..
                    }) = tokens.get(*i + 1)
                    {
                        binding = alias.clone();
                    }
                    *i += 2;
                }
                out.push(UseLeaf {
                    path,
                    binding: Some(binding),
                    line,
                });
                return;
            }
            Tok::Punct('*') => {
                *i += 1;
                out.push(UseLeaf {
                    path,
                    binding: None,
                    line,
                });
                return;
            }
            Tok::Punct('{') => {
                *i += 1;
                while let Some(t) = tokens.get(*i) {
                    match t.tok {
                        Tok::Punct('}') => {
                            *i += 1;
                            return;
                        }
                        Tok::Punct(',') => *i += 1,
                        Tok::Punct(';') => return,
                        _ => {
                            let before = *i;
                            parse_use_tree(tokens, i, path.clone(), out);
                            if *i == before {
                                *i += 1;
                            }
                        }
                    }
                }
                return;
            }
            _ => return,
        }
    }
}

/// Where a path goes: the module file it lands in (the longest prefix that is a module)
/// and the name used there. `None` for paths into other crates or into no module.
fn resolve(
    current: &[String],
    path: &[String],
    modules: &BTreeMap<Module, usize>,
    aliases: &BTreeMap<String, Module>,
) -> Option<(Module, Option<String>)> {
    let first = path.first()?;
    let (base, rest): (Module, &[String]) = match first.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (current.to_vec(), &path[1..]),
        "super" => {
            let ups = path.iter().take_while(|s| *s == "super").count();
            if ups > current.len() {
                return None;
            }
            (current[..current.len() - ups].to_vec(), &path[ups..])
        }
        _ => {
            let mut child = current.to_vec();
            child.push(first.clone());
            if modules.contains_key(&child) {
                (current.to_vec(), path)
            } else if let Some(module) = aliases.get(first) {
                (module.clone(), &path[1..])
            } else {
                return None;
            }
        }
    };
    for k in (0..=rest.len()).rev() {
        let mut candidate = base.clone();
        candidate.extend(rest[..k].iter().cloned());
        if modules.contains_key(&candidate) {
            return Some((candidate, rest.get(k).cloned()));
        }
    }
    None
}

/// Every module a file refers to: (target, tying name, line).
fn references(
    current: &[String],
    tokens: &[Token],
    modules: &BTreeMap<Module, usize>,
) -> Vec<(Module, String, usize)> {
    let mut out = Vec::new();

    // `use` declarations.
    let mut in_use = vec![false; tokens.len()];
    let mut leaves = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if is_ident(tokens.get(i), "use") && !is_punct(tokens.get(i + 1), '<') {
            let start = i;
            i += 1;
            parse_use_tree(tokens, &mut i, Vec::new(), &mut leaves);
            while i < tokens.len() && !is_punct(tokens.get(i), ';') {
                i += 1;
            }
            in_use[start..(i + 1).min(tokens.len())].fill(true);
        }
        i += 1;
    }
    // Modules brought into scope: `use crate::a::b;` binds `b`, `use super::*;` binds
    // the parent's child modules. Two passes, since a `use` may start from a module
    // another `use` brought in (`use crate::alerts; use alerts::rules::X;`).
    let mut aliases: BTreeMap<String, Module> = BTreeMap::new();
    for last_pass in [false, true] {
        for leaf in &leaves {
            let Some((target, name)) = resolve(current, &leaf.path, modules, &aliases) else {
                continue;
            };
            if name.is_none() {
                match &leaf.binding {
                    Some(binding) => {
                        aliases.insert(binding.clone(), target.clone());
                    }
                    None => {
                        for module in modules.keys() {
                            if module.len() == target.len() + 1 && module.starts_with(&target) {
                                aliases.insert(module.last().unwrap().clone(), module.clone());
                            }
                        }
                    }
                }
            }
            if last_pass {
                let name = match (name, &leaf.binding) {
                    (Some(name), _) => name,
                    (None, None) => "*".into(),
                    (None, Some(_)) => target.last().cloned().unwrap_or_else(|| "crate".into()),
                };
                out.push((target, name, leaf.line));
            }
        }
    }

    // Paths in code: `crate::a::f()`, `super::X`, `child::Y`, `alias::Z`.
    let mut i = 0;
    while i < tokens.len() {
        let starts = !in_use[i]
            && matches!(tokens[i].tok, Tok::Ident(_))
            && matches!(tokens.get(i + 1).map(|t| &t.tok), Some(Tok::Sep))
            && !(i > 0 && matches!(tokens[i - 1].tok, Tok::Sep));
        if !starts {
            i += 1;
            continue;
        }
        let mut path = Vec::new();
        let mut j = i;
        while let Some(Token {
            tok: Tok::Ident(seg),
            ..
        }) = tokens.get(j)
        {
            path.push(seg.clone());
            if matches!(tokens.get(j + 1).map(|t| &t.tok), Some(Tok::Sep))
                && matches!(tokens.get(j + 2).map(|t| &t.tok), Some(Tok::Ident(_)))
            {
                j += 2;
            } else {
                break;
            }
        }
        if path.len() >= 2 {
            if let Some((target, name)) = resolve(current, &path, modules, &aliases) {
                let name = name.unwrap_or_else(|| path.last().unwrap().clone());
                out.push((target, name, tokens[i].line));
            }
        }
        i = j + 1;
    }
    out
}

// ---------------------------------------------------------------------------------
// The analyser checked on made-up crates, so the real check cannot pass silently.
// ---------------------------------------------------------------------------------

fn crate_of(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

#[test]
fn analyser_finds_a_cycle_between_two_files() {
    let files = crate_of(&[
        (
            "demo/src/lib.rs",
            "pub mod a;\npub mod b;\npub(crate) fn helper() {}\n",
        ),
        (
            "demo/src/a.rs",
            "use crate::{\n    b::{Thing,\n        other as o},\n};\npub struct Shared;\n",
        ),
        (
            "demo/src/b.rs",
            "pub struct Thing;\npub fn other() {}\nfn f() { let _ = crate::a::Shared; }\n",
        ),
    ]);
    let cycles = find_cycles(&files);
    assert_eq!(cycles.len(), 1, "{cycles:#?}");
    assert_eq!(cycles[0].files, ["demo/src/a.rs", "demo/src/b.rs"]);
    let shown = cycles[0].to_string();
    assert!(
        shown.contains("demo/src/a.rs -> demo/src/b.rs: Thing (2), other (3)"),
        "{shown}"
    );
    assert!(
        shown.contains("demo/src/b.rs -> demo/src/a.rs: Shared (3)"),
        "{shown}"
    );
}

#[test]
fn analyser_finds_a_parent_that_re_exports_a_child_that_imports_it() {
    let files = crate_of(&[
        ("demo/src/lib.rs", "pub mod state;\n"),
        (
            "demo/src/state/mod.rs",
            "mod names;\npub use names::Names;\npub struct State;\n",
        ),
        (
            "demo/src/state/names.rs",
            "use super::*;\npub struct Names;\n",
        ),
    ]);
    let cycles = find_cycles(&files);
    assert_eq!(cycles.len(), 1, "{cycles:#?}");
    assert_eq!(
        cycles[0].files,
        ["demo/src/state/mod.rs", "demo/src/state/names.rs"]
    );
}

#[test]
fn analyser_reports_no_cycle_when_there_is_none() {
    // `b` uses `a` for real; every way `a` mentions `b` is not an import.
    let files = crate_of(&[
        ("demo/src/lib.rs", "pub mod a;\npub mod b;\n"),
        (
            "demo/src/a.rs",
            concat!(
                "//! See [`crate::b`] and [`crate::b::Thing`].\n",
                "/* crate::b::Thing /* nested crate::b */ */\n",
                "/// Not to be confused with [`super::b::Thing`].\n",
                "pub struct Shared<'a>(&'a str);\n",
                "const Q: char = '\"';\n",
                "const S: &str = \"crate::b::Thing \\\" crate::b::other\";\n",
                "const R: &str = r#\"crate::b::Thing \" crate::b::Thing\"#;\n",
                "#[cfg(test)]\n",
                "fn only_in_tests() { crate::b::other(); }\n",
                "#[cfg(test)]\n",
                "mod tests {\n    use super::*;\n    use crate::b::Thing;\n",
                "    fn t() { { crate::b::other(); } }\n}\n",
            ),
        ),
        (
            "demo/src/b.rs",
            concat!(
                "use super::a::Shared;\n",
                "pub struct Thing;\npub fn other() {}\n",
                "#[cfg(test)]\nmod tests;\n",
            ),
        ),
        // A test module file: its imports do not count.
        (
            "demo/src/b/tests.rs",
            "use super::*;\nuse crate::a::Shared;\n",
        ),
    ]);
    let cycles = find_cycles(&files);
    assert!(cycles.is_empty(), "{cycles:#?}");
    // ... while the one real edge was seen.
    let modules: BTreeMap<Module, usize> = files
        .iter()
        .enumerate()
        .map(|(i, (p, _))| (module_of(p).unwrap(), i))
        .collect();
    let (tokens, _) = without_test_items(tokenize(&strip(&files[2].1)));
    let refs = references(&module_of(&files[2].0).unwrap(), &tokens, &modules);
    assert_eq!(refs, [(vec!["a".to_string()], "Shared".to_string(), 1)]);
}
