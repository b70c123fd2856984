//! docs/integration.md, executed: every `sh` block of the page runs, as written, in one bash
//! against a fresh `tongban serve`, and the output of each block must equal the `text` block
//! that follows it. The page cannot drift from the binary.
//!
//! The blocks run in a directory laid out as the repository root they are written for: `data/`
//! is the server's data directory and `js/` the repository's JS client. Needs bash, curl,
//! Python 3 with SM3 in hashlib, and Node 20 (scripts/test installs them).

mod common;

use std::path::Path;
use std::process::Command;

use common::Server;

/// A fenced block of the page: its language and its text.
struct Block {
    lang: String,
    text: String,
}

fn blocks(page: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for line in page.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                current = Some(Block {
                    lang: lang.trim().to_owned(),
                    text: String::new(),
                })
            }
            (Some(_), Some(_)) => out.extend(current.take()),
            (Some(b), None) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    out
}

const MARK: &str = "@@ block end @@";

#[test]
fn the_integration_walkthrough_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let page = std::fs::read_to_string(root.join("docs/integration.md")).expect("the page");
    let blocks = blocks(&page);

    // Each `sh` block, then what it must print: the `text` block right after it, if any.
    let mut script =
        String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    let mut expected: Vec<Option<String>> = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        if b.lang != "sh" {
            continue;
        }
        script.push_str(&b.text);
        script.push_str(&format!("echo '{MARK}'\n"));
        expected.push(
            blocks
                .get(i + 1)
                .filter(|next| next.lang == "text")
                .map(|next| next.text.clone()),
        );
    }
    assert!(expected.len() >= 5, "the page lost its steps");

    let s = Server::start(&[]);
    let dir = s
        .data_dir
        .parent()
        .expect("the server's directory")
        .to_owned();
    std::os::unix::fs::symlink(root.join("js").canonicalize().expect("js/"), dir.join("js"))
        .expect("link js/");
    let up = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");

    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&dir)
        .env("TB", format!("https://{}", s.public))
        .env("ADMIN", format!("https://{}", s.admin))
        .env("UP", up.to_string())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the walk-through failed ({}):\n{stdout}\n{stderr}\nserver log:\n{}",
        out.status,
        s.log_text()
    );
    let printed: Vec<&str> = stdout.split(&format!("{MARK}\n")).collect();
    assert_eq!(printed.len(), expected.len() + 1, "{stdout}");
    for (n, (got, want)) in printed.iter().zip(&expected).enumerate() {
        if let Some(want) = want {
            assert_eq!(got, want, "sh block {} printed something else", n + 1);
        }
    }
}
