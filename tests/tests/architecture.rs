//! The workspace's structure, checked: no two modules of a crate import each
//! other, directly or through others (configuration types sit below the code
//! that uses them), and the engine crate stays free of I/O front-end
//! dependencies (audio devices, signals, command line, progress bars).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace root (this crate lives in `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Source directories of the workspace's crates.
const CRATE_SOURCES: &[&str] = &[
    "engine/src",
    "daemon/src",
    "lab/src",
    "tests/src",
    "ladspa/src",
    "cell-plugins/abi/src",
    "cell-plugins/sdk/src",
    "cell-plugins/host/src",
    "cell-plugins/mgru/src",
    "cell-plugins/gru/src",
    "cell-plugins/elman/src",
    "cell-plugins/examples/leaky/src",
];

type ModPath = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `a/b.rs` and `a/b/mod.rs` → `[a, b]`; `lib.rs`/`main.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: ModPath = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its `#[cfg(test)]` tests
/// module (test-only imports do not make an architecture).
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        code.push_str(line);
        code.push('\n');
    }
    code
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The `a::b::c` path starting at byte `i` of `code` (identifiers joined by
/// `::`; stops at `{`, `*`, whitespace or punctuation).
fn path_at(code: &str, i: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = &code[i..];
    loop {
        let n = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if n == 0 {
            break;
        }
        out.push(rest[..n].to_string());
        rest = &rest[n..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    out
}

/// Modules `module` refers to through `crate::…`, `super::…` or a child's
/// name, resolved to the longest known module prefix. The crate root is left
/// out (it only declares and re-exports).
fn references(module: &ModPath, code: &str, known: &BTreeSet<ModPath>) -> BTreeSet<ModPath> {
    let mut out = BTreeSet::new();
    let b = code.as_bytes();
    for i in 0..b.len() {
        let c = b[i] as char;
        if !(c.is_ascii_alphabetic() || c == '_') {
            continue;
        }
        if i > 0 && (is_ident(b[i - 1] as char) || b[i - 1] == b':') {
            continue; // inside an identifier or a path
        }
        let path = path_at(code, i);
        let end = i + path.iter().map(String::len).sum::<usize>() + 2 * (path.len() - 1);
        if path.len() < 2 && !code[end..].starts_with("::{") {
            continue; // not a path (`pub(super)` is a visibility, not an import)
        }
        let (mut base, rest): (ModPath, &[String]) = match path[0].as_str() {
            "crate" => (Vec::new(), &path[1..]),
            "super" => {
                let supers = path.iter().take_while(|p| *p == "super").count();
                let mut b = module.clone();
                b.truncate(b.len().saturating_sub(supers));
                (b, &path[supers..])
            }
            "self" => (module.clone(), &path[1..]),
            _ => (module.clone(), &path[..]),
        };
        base.extend(rest.iter().cloned());
        while !base.is_empty() && !known.contains(&base) {
            base.pop();
        }
        if !base.is_empty() && &base != module && !module.is_empty() {
            out.insert(base);
        }
    }
    out
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        graph: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on: BTreeSet<&'a ModPath>,
        next: usize,
        out: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(st: &mut State<'a>, v: &'a ModPath) {
        st.index.insert(v, st.next);
        st.low.insert(v, st.next);
        st.next += 1;
        st.stack.push(v);
        st.on.insert(v);
        let graph = st.graph;
        for w in graph.get(v).into_iter().flatten() {
            if !st.index.contains_key(w) {
                visit(st, w);
                let lw = st.low[w];
                let lv = st.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if st.on.contains(w) {
                let iw = st.index[w];
                let lv = st.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if st.low[v] == st.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                st.out.push(comp);
            }
        }
    }
    let mut st = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !st.index.contains_key(v) {
            visit(&mut st, v);
        }
    }
    st.out
}

fn import_graph(src: &Path) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeMap<ModPath, PathBuf> =
        files.into_iter().map(|f| (module_of(src, &f), f)).collect();
    let known: BTreeSet<ModPath> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(m, f)| {
            let code = code_of(&std::fs::read_to_string(f).expect("readable source"));
            (m.clone(), references(m, &code, &known))
        })
        .collect()
}

#[test]
fn no_module_imports_another_that_imports_it_back() {
    let root = root();
    let mut found = Vec::new();
    for dir in CRATE_SOURCES {
        let src = root.join(dir);
        if !src.is_dir() {
            continue;
        }
        for c in cycles(&import_graph(&src)) {
            let names: Vec<String> = c.iter().map(|m| m.join("/")).collect();
            found.push(format!("{dir}: {}", names.join(" ↔ ")));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle() {
    // a → b through `crate::b`, b → a through `super::a`.
    let known: BTreeSet<ModPath> = [vec!["a".to_string()], vec!["b".to_string()]].into();
    let a = references(&vec!["a".into()], "use crate::b::Thing;\n", &known);
    let b = references(&vec!["b".into()], "fn f() { super::a::g() }\n", &known);
    let v = references(&vec!["b".into()], "pub(super) fn g() {}\n", &known);
    assert!(v.is_empty(), "visibility is not an import: {v:?}");
    let graph: BTreeMap<ModPath, BTreeSet<ModPath>> =
        [(vec!["a".to_string()], a), (vec!["b".to_string()], b)].into();
    assert_eq!(cycles(&graph).len(), 1);
}

/// Dependency names of a manifest's `[dependencies]` table, and the paths of
/// the workspace crates among them.
fn dependencies(
    manifest: &Path,
    workspace: &BTreeMap<String, PathBuf>,
) -> Vec<(String, Option<PathBuf>)> {
    let text = std::fs::read_to_string(manifest).expect("manifest");
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_deps = t == "[dependencies]";
            continue;
        }
        if !in_deps || t.is_empty() || t.starts_with('#') {
            continue;
        }
        let name = t.split(['=', '.']).next().unwrap_or("").trim().to_string();
        let path = workspace.get(&name).cloned();
        out.push((name, path));
    }
    out
}

#[test]
fn the_engine_depends_on_no_front_end_crate() {
    let root = root();
    let ws = std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace manifest");
    let workspace: BTreeMap<String, PathBuf> = ws
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once('=')?;
            let path = rest.split("path = \"").nth(1)?.split('"').next()?;
            Some((name.trim().to_string(), root.join(path)))
        })
        .collect();
    let forbidden = [
        "cpal",
        "alsa",
        "signal-hook",
        "clap",
        "indicatif",
        "hound",
        "toml",
    ];
    let mut seen = BTreeSet::new();
    let mut todo = vec![("hush-engine".to_string(), root.join("engine"))];
    while let Some((name, dir)) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        for (dep, path) in dependencies(&dir.join("Cargo.toml"), &workspace) {
            assert!(
                !forbidden.contains(&dep.as_str()),
                "{name} (under hush-engine) depends on {dep}"
            );
            if let Some(p) = path {
                todo.push((dep, p));
            }
        }
    }
    assert!(
        seen.contains("hush-cell-host"),
        "walked the cell crates: {seen:?}"
    );
}
