//! Embeds every `rules/*.toml` into the binary, deflate-compressed: a table
//! of `(file name, length)` and one compressed stream of the files' texts
//! one after another, which `rules::embedded()` inflates at start-up.
//!
//! Compressed because the pack's examples are secrets by design: stored as
//! text, they made every scan of a system or image holding leakhound report
//! its binary thousands of times. Deflate also takes ~1 MiB off the binary.
//!
//! A second stream holds what a scan needs and nothing more, ready to load
//! fast (start-up for a one-line file is a promise): every rule as JSON
//! without its examples, with its match window (the regex's longest match)
//! computed here, so start-up neither parses TOML nor regex syntax.
//! `rules::pack_specs()` reads it; tests check it against the TOML.

use std::io::Write;
use std::{env, fs, path::Path};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("rules/ directory exists in the crate")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut table = String::from("pub static EMBEDDED_RULE_FILES: &[(&str, usize)] = &[\n");
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let mut packed = Vec::new();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().unwrap().to_string_lossy();
        let text = fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        deflate.write_all(text.as_bytes()).expect("deflate");
        pack(&format!("rules/{name}"), &text, &mut packed);
        table.push_str(&format!(
            "    ({:?}, {}),\n",
            format!("rules/{name}"),
            text.len()
        ));
    }
    table.push_str("];\n");
    let out = Path::new(&env::var("OUT_DIR").unwrap()).to_path_buf();
    fs::write(
        out.join("embedded_rules.deflate"),
        deflate.finish().expect("deflate"),
    )
    .expect("write embedded_rules.deflate");
    table.push_str(
        "pub static EMBEDDED_RULES_DEFLATE: &[u8] = \
         include_bytes!(concat!(env!(\"OUT_DIR\"), \"/embedded_rules.deflate\"));\n",
    );
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    serde_json::to_writer(&mut deflate, &packed).expect("pack JSON");
    fs::write(
        out.join("packed_rules.deflate"),
        deflate.finish().expect("deflate"),
    )
    .expect("write packed_rules.deflate");
    table.push_str(
        "pub static PACKED_RULES_DEFLATE: &[u8] = \
         include_bytes!(concat!(env!(\"OUT_DIR\"), \"/packed_rules.deflate\"));\n",
    );
    fs::write(out.join("embedded_rules.rs"), table).expect("write embedded_rules.rs");
}

/// Appends `{file, regex: {max_len}, spec}` for every rule of one file, the spec
/// without its examples. A file that does not parse is left to the loader
/// of the TOML stream, which names the error (and tests fail on it).
fn pack(file: &str, text: &str, out: &mut Vec<serde_json::Value>) {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return;
    };
    let Some(toml::Value::Array(rules)) = doc.get("rules") else {
        return;
    };
    for rule in rules {
        let toml::Value::Table(rule) = rule else {
            continue;
        };
        let mut spec = rule.clone();
        spec.remove("examples");
        spec.remove("negative_examples");
        // Same syntax settings as the matcher (rules/compile.rs); a regex
        // that does not parse gets no window and is checked at load.
        let window = spec
            .get("regex")
            .and_then(|r| r.as_str())
            .and_then(|r| {
                regex_syntax::ParserBuilder::new()
                    .unicode(false)
                    .utf8(false)
                    .build()
                    .parse(r)
                    .ok()
            })
            .map(|hir| serde_json::json!({ "max_len": hir.properties().maximum_len() }));
        out.push(serde_json::json!({
            "file": file,
            "regex": window,
            "spec": spec,
        }));
    }
}
