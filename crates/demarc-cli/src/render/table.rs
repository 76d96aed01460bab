//! Aligned plain-text tables for the terminal, with optional ANSI colour per cell.

/// A terminal style for one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Bold,
    Dim,
    Red,
    Yellow,
    Green,
    Blue,
    Magenta,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Self::Plain => "",
            Self::Bold => "1",
            Self::Dim => "2",
            Self::Red => "31",
            Self::Yellow => "33",
            Self::Green => "32",
            Self::Blue => "34",
            Self::Magenta => "35",
        }
    }

    /// The colour demarc uses for a cell owner.
    pub fn for_owner(owner: &str) -> Self {
        match owner {
            "provider" => Self::Blue,
            "customer" => Self::Yellow,
            "shared" => Self::Magenta,
            _ => Self::Dim,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub text: String,
    pub style: Style,
}

impl Cell {
    pub fn styled(text: impl Into<String>, style: Style) -> Self {
        Self {
            text: text.into(),
            style,
        }
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(text: T) -> Self {
        Self {
            text: text.into(),
            style: Style::Plain,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Columns separated by two spaces, the header underlined; colour only when asked.
    pub fn render(&self, color: bool) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(width(&cell.text));
            }
        }
        let mut out = String::new();
        let header: Vec<Cell> = self
            .headers
            .iter()
            .map(|h| Cell::styled(h.clone(), Style::Bold))
            .collect();
        push_line(&mut out, &header, &widths, color);
        let rule: Vec<Cell> = widths
            .iter()
            .map(|w| Cell::styled("-".repeat(*w), Style::Dim))
            .collect();
        push_line(&mut out, &rule, &widths, color);
        for row in &self.rows {
            push_line(&mut out, row, &widths, color);
        }
        out
    }
}

fn push_line(out: &mut String, cells: &[Cell], widths: &[usize], color: bool) {
    let mut line = String::new();
    for (i, w) in widths.iter().enumerate() {
        let (text, style) = cells
            .get(i)
            .map_or(("", Style::Plain), |c| (c.text.as_str(), c.style));
        let pad = w.saturating_sub(width(text));
        let last = i + 1 == widths.len();
        if color && style != Style::Plain {
            line.push_str(&format!("\x1b[{}m{text}\x1b[0m", style.code()));
        } else {
            line.push_str(text);
        }
        if !last {
            line.push_str(&" ".repeat(pad + 2));
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Display width; our cells are ASCII or simple Unicode, so chars are a fair measure.
fn width(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_without_colour() {
        let mut t = Table::new(&["area", "owner"]);
        t.row(vec![
            "grounding".into(),
            Cell::styled("shared", Style::Magenta),
        ]);
        let s = t.render(false);
        assert_eq!(
            s,
            "area       owner\n---------  ------\ngrounding  shared\n"
        );
        assert!(t.render(true).contains("\x1b[35mshared\x1b[0m"));
    }
}
