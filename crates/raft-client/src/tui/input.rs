//! The input line: editing by grapheme (so accents, CJK and emoji move and delete as one),
//! history, and Tab completion of command names. Pure; the TUI maps keys to these calls.

use unicode_segmentation::UnicodeSegmentation as _;
use unicode_width::UnicodeWidthStr as _;

use super::command::Completion;

/// Most lines kept in the history.
const HISTORY: usize = 500;

/// An editable line with a cursor and a history of submitted lines.
#[derive(Debug, Clone, Default)]
pub struct LineEditor {
    text: String,
    /// Cursor as a byte offset into `text`, always on a grapheme boundary.
    cursor: usize,
    history: Vec<String>,
    /// Position while browsing the history (`None`: editing a new line).
    browsing: Option<usize>,
    /// The new line being edited before browsing started.
    draft: String,
}

impl LineEditor {
    /// The current text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Display column of the cursor (wide characters count double).
    pub fn cursor_column(&self) -> usize {
        self.text[..self.cursor].width()
    }

    /// Inserts a character at the cursor.
    pub fn insert(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
        // A combining mark joins the grapheme before it; keep the cursor on a boundary.
        self.cursor = self.next_boundary_at_or_after(self.cursor);
    }

    /// Inserts a string at the cursor (a paste).
    pub fn insert_str(&mut self, s: &str) {
        for c in s.chars().filter(|c| !c.is_control()) {
            self.insert(c);
        }
    }

    /// Deletes the grapheme before the cursor.
    pub fn backspace(&mut self) {
        if let Some(start) = self.prev_boundary() {
            self.text.replace_range(start..self.cursor, "");
            self.cursor = start;
        }
    }

    /// Deletes the grapheme under the cursor.
    pub fn delete(&mut self) {
        if let Some(end) = self.next_boundary() {
            self.text.replace_range(self.cursor..end, "");
        }
    }

    /// Moves one grapheme left.
    pub fn left(&mut self) {
        if let Some(p) = self.prev_boundary() {
            self.cursor = p;
        }
    }

    /// Moves one grapheme right.
    pub fn right(&mut self) {
        if let Some(n) = self.next_boundary() {
            self.cursor = n;
        }
    }

    /// Moves to the start of the line.
    pub fn home(&mut self) {
        self.cursor = 0;
    }

    /// Moves to the end of the line.
    pub fn end(&mut self) {
        self.cursor = self.text.len();
    }

    /// Ctrl+W: deletes the word before the cursor (and the spaces after it).
    pub fn delete_word(&mut self) {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end();
        let start = trimmed
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8());
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Ctrl+U: deletes everything before the cursor.
    pub fn delete_to_start(&mut self) {
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }

    /// Tab: completes a command name at the start of the line (with the cursor at the
    /// end). Returns the candidates when several fit and none can be chosen.
    pub fn complete(&mut self) -> Vec<&'static str> {
        if self.cursor != self.text.len() {
            return Vec::new();
        }
        match super::command::complete(&self.text) {
            Completion::Line(done) => {
                self.text = done;
                self.cursor = self.text.len();
                Vec::new()
            }
            Completion::Choices(names) => names,
            Completion::Nothing => Vec::new(),
        }
    }

    /// Enter: returns the line, remembers it, and starts a new one.
    pub fn submit(&mut self) -> String {
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    /// Up: the previous line of the history.
    pub fn history_up(&mut self) {
        let next = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = self.text.clone();
                self.history.len() - 1
            }
            Some(0) => 0,
            Some(i) => i - 1,
        };
        self.browsing = Some(next);
        self.set(self.history[next].clone());
    }

    /// Down: the next line of the history, then back to the draft.
    pub fn history_down(&mut self) {
        match self.browsing {
            None => {}
            Some(i) if i + 1 < self.history.len() => {
                self.browsing = Some(i + 1);
                self.set(self.history[i + 1].clone());
            }
            Some(_) => {
                self.browsing = None;
                let draft = std::mem::take(&mut self.draft);
                self.set(draft);
            }
        }
    }

    fn set(&mut self, text: String) {
        self.text = text;
        self.cursor = self.text.len();
    }

    fn prev_boundary(&self) -> Option<usize> {
        self.text[..self.cursor]
            .grapheme_indices(true)
            .next_back()
            .map(|(i, _)| i)
    }

    fn next_boundary(&self) -> Option<usize> {
        self.text[self.cursor..]
            .graphemes(true)
            .next()
            .map(|g| self.cursor + g.len())
    }

    fn next_boundary_at_or_after(&self, at: usize) -> usize {
        let mut pos = 0;
        for g in self.text.graphemes(true) {
            if pos >= at {
                return pos;
            }
            pos += g.len();
        }
        self.text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> LineEditor {
        let mut e = LineEditor::default();
        e.insert_str(s);
        e
    }

    #[test]
    fn edits_by_grapheme() {
        let mut e = typed("café 🦀日本");
        assert_eq!(e.cursor_column(), "café 🦀日本".width());
        e.backspace();
        assert_eq!(e.text(), "café 🦀日");
        e.left();
        e.left();
        e.backspace();
        assert_eq!(e.text(), "café🦀日", "deleted the space before the crab");
        e.home();
        e.delete();
        assert_eq!(e.text(), "afé🦀日");
        e.end();
        e.insert('!');
        assert_eq!(e.text(), "afé🦀日!");
        // 'e' + combining acute accent is one grapheme: one backspace removes both.
        let mut e = typed("ne\u{301}");
        e.backspace();
        assert_eq!(e.text(), "n");
        // Moving over it takes one step.
        let mut e = typed("e\u{301}x");
        e.home();
        e.right();
        e.insert('|');
        assert_eq!(e.text(), "e\u{301}|x");
    }

    #[test]
    fn ctrl_w_and_ctrl_u() {
        let mut e = typed("put greeting hello  ");
        e.delete_word();
        assert_eq!(e.text(), "put greeting ");
        e.delete_word();
        assert_eq!(e.text(), "put ");
        e.insert_str("k v");
        e.left();
        e.delete_to_start();
        assert_eq!(e.text(), "v");
        assert_eq!(e.cursor_column(), 0);
    }

    #[test]
    fn history_browses_and_keeps_the_draft() {
        let mut e = LineEditor::default();
        for line in ["put a 1", "get a", "get a", "  "] {
            e.insert_str(line);
            e.submit();
        }
        e.insert_str("dra");
        e.history_up();
        assert_eq!(e.text(), "get a", "duplicates and blank lines are not kept");
        e.history_up();
        assert_eq!(e.text(), "put a 1");
        e.history_up();
        assert_eq!(e.text(), "put a 1", "stays at the oldest");
        e.history_down();
        assert_eq!(e.text(), "get a");
        e.history_down();
        assert_eq!(e.text(), "dra", "back to the draft");
    }

    #[test]
    fn tab_completes_at_the_end_only() {
        let mut e = typed("sta");
        e.complete();
        assert_eq!(e.text(), "status ");
        let mut e = typed("pu");
        e.home();
        e.complete();
        assert_eq!(e.text(), "pu");
    }
}
