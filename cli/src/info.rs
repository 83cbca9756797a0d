//! `hood info MODEL`.

use hood_runtime::graph::Graph;
use hood_runtime::Model;
use std::path::Path;
use std::process::ExitCode;

fn node_lines(g: &Graph) -> Vec<String> {
    g.nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let ins: Vec<String> = n
                .inputs
                .iter()
                .map(|&v| format!("{}{:?}", g.values[v].name, g.values[v].shape))
                .collect();
            let outs: Vec<String> = n
                .outputs
                .iter()
                .map(|&v| format!("{}{:?}", g.values[v].name, g.values[v].shape))
                .collect();
            format!(
                "{i:>4}  {:<17} {} -> {}",
                n.op.kind().name(),
                ins.join(", "),
                outs.join(", ")
            )
        })
        .collect()
}

pub fn run(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let m = Model::open(path)?;
    let meta = &m.meta;
    if json {
        let v = serde_json::json!({
            "path": path.display().to_string(),
            "file_size": m.file_size(),
            "parameters": m.parameter_count(),
            "meta": meta,
            "ops": m.graph.nodes.iter().map(|n| n.op.kind().name()).collect::<Vec<_>>(),
        });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let i = &meta.input;
    println!("model       {} ({})", meta.name, path.display());
    println!("family      {}", meta.family);
    println!(
        "input       {}x{}x{}  mean {:?}  std {:?}",
        i.channels, i.height, i.width, i.mean, i.std
    );
    let names = meta.classes.names.as_ref().map(|n| {
        let shown: Vec<&str> = n.iter().take(10).map(|s| s.as_str()).collect();
        format!(
            "  ({}{})",
            shown.join(", "),
            if n.len() > 10 { ", ..." } else { "" }
        )
    });
    println!(
        "classes     {}{}",
        meta.classes.count,
        names.unwrap_or_default()
    );
    println!("fw_layers   {}", meta.fw_layers);
    println!("score       {}", meta.score.definition);
    match &meta.threshold {
        Some(t) => println!(
            "threshold   {} ({}{}{}{})",
            t.value,
            t.method,
            t.tpr.map(|v| format!(", TPR {v}")).unwrap_or_default(),
            t.images
                .map(|v| format!(", {v} images"))
                .unwrap_or_default(),
            t.data
                .as_ref()
                .map(|v| format!(", {v}"))
                .unwrap_or_default()
        ),
        None => {
            println!("threshold   none (not calibrated: infer reports scores without a verdict)")
        }
    }
    println!(
        "self-test   {}",
        if meta.golden.is_some() {
            "golden vector stored"
        } else {
            "none"
        }
    );
    for f in &meta.source.files {
        println!("source      {}  sha256 {}", f.name, f.sha256);
    }
    println!(
        "converter   {} {}",
        meta.converter.name, meta.converter.version
    );
    println!("parameters  {}", m.parameter_count());
    println!("file size   {} bytes", m.file_size());
    println!("ops         {}", m.graph.nodes.len());
    for l in node_lines(&m.graph) {
        println!("{l}");
    }
    Ok(ExitCode::SUCCESS)
}
