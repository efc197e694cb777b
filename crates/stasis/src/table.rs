//! Table output: left-aligned columns, as `docker ps` prints them.

use std::io::Write;

/// Prints rows (the first is the header) as left-aligned columns three
/// spaces apart; the last column is not padded.
pub fn print(out: &mut impl Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up() {
        let rows = vec![
            vec!["ID".to_owned(), "NAME".to_owned(), "STATUS".to_owned()],
            vec!["abc".to_owned(), "a-long-name".to_owned(), "Up".to_owned()],
        ];
        let mut out = Vec::new();
        super::print(&mut out, &rows).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "ID    NAME          STATUS\nabc   a-long-name   Up\n"
        );
    }
}
