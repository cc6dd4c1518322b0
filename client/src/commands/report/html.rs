//! The HTML of the report: escaping, number cells, tables, figures and the page around
//! the sections. Everything from the data goes through [`esc`]; the page loads nothing
//! from elsewhere (inline CSS, system fonts, images beside it), so the folder can be
//! mailed or opened offline.

/// `s` safe inside HTML text and double- or single-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number with `prec` decimals, or a dash when there is none.
pub fn num(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.prec$}"),
        _ => "—".into(),
    }
}

/// A float as typed in a config (`0.001`, `1`, `100`).
pub fn plain(v: f64) -> String {
    v.to_string()
}

/// A trial's state, coloured by kind, with its message (why it failed or stopped) below.
pub fn state(state: &str, message: &str) -> String {
    let class = match state {
        "succeeded" => "ok",
        "failed" => "bad",
        "running" | "queued" => "busy",
        _ => "other",
    };
    let mut s = format!(r#"<span class="st {class}">{}</span>"#, esc(state));
    if !message.is_empty() && state != "succeeded" {
        s.push_str(&format!(r#"<span class="msg">{}</span>"#, esc(message)));
    }
    s
}

/// An HTML table: a header row and body rows of ready-made (escaped) cells.
pub struct Table {
    /// Column titles (plain text) and whether the column holds numbers (right-aligned).
    head: Vec<(String, bool)>,
    /// Rows: an optional class and the cells' HTML.
    rows: Vec<(&'static str, Vec<String>)>,
}

impl Table {
    /// A table with these columns; `numeric` lists the right-aligned ones by title.
    pub fn new(head: &[&str], numeric: &[&str]) -> Table {
        Table {
            head: head
                .iter()
                .map(|h| (h.to_string(), numeric.contains(h)))
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row of cells (HTML, already escaped) with a class ("" for none).
    pub fn row(&mut self, class: &'static str, cells: Vec<String>) {
        self.rows.push((class, cells));
    }

    /// The table's HTML, in a box that scrolls sideways on a narrow window.
    pub fn render(&self) -> String {
        let cell = |tag: &str, n: bool, body: &str| match n {
            true => format!(r#"<{tag} class="n">{body}</{tag}>"#),
            false => format!("<{tag}>{body}</{tag}>"),
        };
        let mut s = String::from("<div class=\"scroll\"><table>\n<thead><tr>");
        for (h, n) in &self.head {
            s.push_str(&cell("th", *n, &esc(h)));
        }
        s.push_str("</tr></thead>\n<tbody>\n");
        for (class, cells) in &self.rows {
            match class.is_empty() {
                true => s.push_str("<tr>"),
                false => s.push_str(&format!(r#"<tr class="{class}">"#)),
            }
            for (i, c) in cells.iter().enumerate() {
                let n = self.head.get(i).is_some_and(|h| h.1);
                s.push_str(&cell("td", n, c));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody></table></div>\n");
        s
    }
}

/// A picture beside the page (`src` relative to it) with a caption (HTML); a click opens
/// it at full size. `class` sets its width in the row of figures.
pub fn figure(src: &str, alt: &str, caption: &str, class: &str) -> String {
    let src = esc(src);
    format!(
        "<figure class=\"{class}\"><a href=\"{src}\"><img src=\"{src}\" alt=\"{}\"></a><figcaption>{caption}</figcaption></figure>\n",
        esc(alt)
    )
}

/// A row of figures that wraps.
pub fn figures(items: &[String]) -> String {
    format!("<div class=\"figs\">\n{}</div>\n", items.concat())
}

/// The notes of a section (plain text): what is not shown and why.
pub fn notes(items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut s = String::from("<div class=\"notes\"><strong>Not shown</strong><ul>\n");
    for n in items {
        s.push_str(&format!("<li>{}</li>\n", esc(n)));
    }
    s.push_str("</ul></div>\n");
    s
}

/// Inline style of the page: readable tables, figures in wrapping rows.
const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  max-width: 1360px; margin: 0 auto; padding: 24px 32px 64px; color: #1d2430;
  background: #fff; line-height: 1.45; }
h1 { font-size: 1.9rem; margin: 0 0 .2rem; }
h2 { font-size: 1.5rem; margin: 2.6rem 0 .8rem; padding-bottom: .3rem;
  border-bottom: 2px solid #d8dee8; }
h3 { font-size: 1.15rem; margin: 1.8rem 0 .5rem; }
h4 { font-size: 1rem; margin: 1.2rem 0 .4rem; color: #374151; }
p { margin: .4rem 0; max-width: 60rem; }
.meta { color: #5a6475; }
nav { margin: .8rem 0 0; }
nav a { margin-right: 1.2rem; }
a { color: #1f5fbf; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .88em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .9rem; }
th, td { padding: .3rem .65rem; border-bottom: 1px solid #e3e7ee; text-align: left;
  vertical-align: top; white-space: nowrap; }
th { background: #f1f4f8; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #fff4d1; font-weight: 600; }
.st.ok { color: #1a7f37; } .st.bad { color: #c62828; } .st.busy { color: #1f5fbf; }
.st.other { color: #9a6700; }
.msg { display: block; white-space: normal; max-width: 28rem; color: #6b7280;
  font-size: .85em; font-weight: normal; }
.figs { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e3e7ee; }
figcaption { font-size: .85rem; color: #4b5563; margin-top: .3rem; }
figure.half { flex: 1 1 480px; max-width: calc(50% - 9px); }
figure.third { flex: 0 1 calc(33.33% - 12px); min-width: 300px; }
figure.quarter { flex: 0 1 calc(25% - 14px); min-width: 240px; }
figure.wide { flex: 1 1 100%; max-width: 1100px; }
.side { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.side > figure { flex: 2 1 600px; }
.side > div { flex: 1 1 300px; }
.notes { background: #f6f7f9; border-left: 4px solid #b0b7c3; padding: .4rem 1rem;
  margin: 1.2rem 0; font-size: .88rem; }
.notes ul { margin: .3rem 0; padding-left: 1.2rem; }
"#;

/// Counts the page's pictures once they have loaded, into `<body data-images="N/M">`, so a
/// headless browser's DOM dump shows whether every picture really displayed.
const SCRIPT: &str = r#"
window.addEventListener("load", function () {
  var imgs = document.images, loaded = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) loaded++;
  }
  document.body.dataset.images = loaded + "/" + imgs.length;
});
"#;

/// The whole page: `title` (plain text), a header (HTML), and the sections (HTML).
pub fn page(title: &str, header: &str, sections: &[String]) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{header}{}<script>{SCRIPT}</script>\n</body>\n</html>\n",
        esc(title),
        sections.concat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_cannot_become_markup() {
        assert_eq!(
            esc(r#"<img src="x" onerror='y'>&"#),
            "&lt;img src=&quot;x&quot; onerror=&#39;y&#39;&gt;&amp;"
        );
        let s = state("failed", "<b>boom</b>");
        assert!(
            s.contains("&lt;b&gt;boom&lt;/b&gt;") && !s.contains("<b>"),
            "{s}"
        );
        let n = notes(&["a <script>".into()]);
        assert!(n.contains("a &lt;script&gt;"), "{n}");
        let f = figure("a\"b.png", "<alt>", "cap", "half");
        assert!(f.contains("src=\"a&quot;b.png\"") && f.contains("alt=\"&lt;alt&gt;\""));
    }

    #[test]
    fn numbers_and_missing_numbers() {
        assert_eq!(num(Some(0.62857), 3), "0.629");
        assert_eq!(num(None, 3), "—");
        assert_eq!(num(Some(f64::NAN), 1), "—");
        assert_eq!(plain(0.001), "0.001");
        assert_eq!(plain(100.0), "100");
    }

    #[test]
    fn a_table_aligns_numbers_right_and_marks_rows() {
        let mut t = Table::new(&["Trial", "Acc"], &["Acc"]);
        t.row("best", vec!["t-1".into(), "0.7".into()]);
        let h = t.render();
        assert!(h.contains("<th class=\"n\">Acc</th>"), "{h}");
        assert!(h.contains("<tr class=\"best\"><td>t-1</td><td class=\"n\">0.7</td></tr>"));
    }
}
