//! Pretty, coloured JSON for the detail pane.

use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use serde_json::Value;

/// The lines of `value` pretty-printed, keys, strings, numbers and literals coloured.
pub fn lines(value: &Value) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    write(value, 0, &mut current, &mut out, false);
    if !current.is_empty() {
        out.push(Line::from(current));
    }
    out
}

fn indent(level: usize) -> Span<'static> {
    Span::raw("  ".repeat(level))
}

fn scalar(value: &Value) -> Span<'static> {
    match value {
        Value::String(s) => Span::styled(
            serde_json::to_string(s).unwrap_or_default(),
            Style::new().fg(Color::Green),
        ),
        Value::Number(n) => Span::styled(n.to_string(), Style::new().fg(Color::Magenta)),
        Value::Bool(b) => Span::styled(b.to_string(), Style::new().fg(Color::Yellow)),
        Value::Null => Span::styled("null", Style::new().fg(Color::DarkGray)),
        _ => Span::raw(""),
    }
}

fn write(
    value: &Value,
    level: usize,
    line: &mut Vec<Span<'static>>,
    out: &mut Vec<Line<'static>>,
    comma: bool,
) {
    let tail = if comma { "," } else { "" };
    match value {
        Value::Object(map) if !map.is_empty() => {
            line.push(Span::raw("{"));
            out.push(Line::from(std::mem::take(line)));
            let n = map.len();
            for (i, (key, item)) in map.iter().enumerate() {
                line.push(indent(level + 1));
                line.push(Span::styled(
                    serde_json::to_string(key).unwrap_or_default(),
                    Style::new().fg(Color::Cyan),
                ));
                line.push(Span::raw(": "));
                write(item, level + 1, line, out, i + 1 < n);
            }
            line.push(indent(level));
            line.push(Span::raw(format!("}}{tail}")));
            out.push(Line::from(std::mem::take(line)));
        }
        Value::Array(items) if !items.is_empty() => {
            line.push(Span::raw("["));
            out.push(Line::from(std::mem::take(line)));
            let n = items.len();
            for (i, item) in items.iter().enumerate() {
                line.push(indent(level + 1));
                write(item, level + 1, line, out, i + 1 < n);
            }
            line.push(indent(level));
            line.push(Span::raw(format!("]{tail}")));
            out.push(Line::from(std::mem::take(line)));
        }
        Value::Object(_) => {
            line.push(Span::raw(format!("{{}}{tail}")));
            out.push(Line::from(std::mem::take(line)));
        }
        Value::Array(_) => {
            line.push(Span::raw(format!("[]{tail}")));
            out.push(Line::from(std::mem::take(line)));
        }
        scalar_value => {
            line.push(scalar(scalar_value));
            line.push(Span::raw(tail));
            out.push(Line::from(std::mem::take(line)));
        }
    }
}
