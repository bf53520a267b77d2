//! Embeds every `rules/*.toml` into the binary, deflate-compressed: a table
//! of `(file name, length)` and one compressed stream of the files' texts
//! one after another, which `rules::embedded()` inflates at start-up.
//!
//! Compressed because the pack's examples are secrets by design: stored as
//! text, they made every scan of a system or image holding leakhound report
//! its binary thousands of times. Deflate also takes ~1 MiB off the binary.

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
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().unwrap().to_string_lossy();
        let text = fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        deflate.write_all(text.as_bytes()).expect("deflate");
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
    fs::write(out.join("embedded_rules.rs"), table).expect("write embedded_rules.rs");
}
