//! Tokenizer for the expr language, following the token kinds and the error messages of Go expr
//! (`Identifier`, `Number`, `String`, `Bytes`, `Operator`, `Bracket`, `EOF`), so that a syntax error
//! reads like the one Argo Rollouts reports (`unexpected token Operator("*")`).

use std::fmt;

/// Kind of a token, named as Go expr names it in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Identifier,
    Number,
    String,
    Bytes,
    Operator,
    Bracket,
    Eof,
}

/// One token: its kind, its text (decoded for strings) and its byte offset in the source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: Kind,
    pub value: String,
    /// Raw bytes of a `b"..."` literal (`value` holds a lossy text form).
    pub bytes: Vec<u8>,
}

impl Token {
    fn new(kind: Kind, value: impl Into<String>) -> Self {
        Self {
            kind,
            value: value.into(),
            bytes: Vec::new(),
        }
    }

    pub fn is(&self, kind: Kind, value: &str) -> bool {
        self.kind == kind && self.value == value
    }

    pub fn is_op(&self, value: &str) -> bool {
        self.is(Kind::Operator, value)
    }

    pub fn is_bracket(&self, value: &str) -> bool {
        self.is(Kind::Bracket, value)
    }
}

impl fmt::Display for Token {
    /// Go's `Token.String()`: `Kind("value")`, or the bare kind when the value is empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Identifier => "Identifier",
            Kind::Number => "Number",
            Kind::String => "String",
            Kind::Bytes => "Bytes",
            Kind::Operator => "Operator",
            Kind::Bracket => "Bracket",
            Kind::Eof => "EOF",
        };
        if self.value.is_empty() {
            f.write_str(kind)
        } else {
            write!(f, "{kind}({})", go_quote(&self.value))
        }
    }
}

/// Go's `%#v` of a string: double quotes, with Go escapes for control characters.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_alnum(c: char) -> bool {
    c == '_' || c == '$' || c.is_alphabetic() || c.is_numeric()
}

fn is_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{a0}'
    )
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    tokens: Vec<Token>,
    _src: &'a str,
}

/// Splits `source` into tokens (the last one is `EOF`), or returns Go expr's lexing error message.
pub(crate) fn lex(source: &str) -> Result<Vec<Token>, String> {
    let mut l = Lexer {
        chars: source.chars().collect(),
        pos: 0,
        tokens: Vec::new(),
        _src: source,
    };
    l.run()?;
    Ok(l.tokens)
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn text(&self, start: usize) -> String {
        self.chars[start..self.pos].iter().collect()
    }

    fn emit(&mut self, kind: Kind, value: impl Into<String>) {
        self.tokens.push(Token::new(kind, value));
    }

    fn run(&mut self) -> Result<(), String> {
        loop {
            let start = self.pos;
            let Some(c) = self.bump() else {
                self.emit(Kind::Eof, "");
                return Ok(());
            };
            match c {
                c if is_space(c) => {}
                '\'' | '"' => {
                    let bytes = self.scan_quoted(c)?;
                    let s = String::from_utf8_lossy(&bytes).into_owned();
                    self.emit(Kind::String, s);
                }
                '`' => {
                    let s = self.scan_raw()?;
                    self.emit(Kind::String, s);
                }
                'b' | 'B' if matches!(self.peek(), Some('\'' | '"')) => {
                    let quote = self.bump().unwrap_or('"');
                    let bytes = self.scan_quoted(quote)?;
                    let mut t = Token::new(Kind::Bytes, String::from_utf8_lossy(&bytes));
                    t.bytes = bytes;
                    self.tokens.push(t);
                }
                '0'..='9' => {
                    self.pos = start;
                    self.number()?;
                }
                '?' => {
                    self.accept(".?");
                    let t = self.text(start);
                    self.emit(Kind::Operator, t);
                }
                '/' => {
                    if self.accept("/") {
                        while let Some(c) = self.bump() {
                            if c == '\n' {
                                break;
                            }
                        }
                    } else if self.accept("*") {
                        loop {
                            match self.bump() {
                                None => return Err("unclosed comment".into()),
                                Some('*') if self.accept("/") => break,
                                Some(_) => {}
                            }
                        }
                    } else {
                        self.emit(Kind::Operator, "/");
                    }
                }
                '#' => {
                    self.accept("#");
                    let t = self.text(start);
                    self.emit(Kind::Operator, t);
                    let name_start = self.pos;
                    while self.peek().is_some_and(is_alnum) {
                        self.pos += 1;
                    }
                    if self.pos > name_start {
                        let t = self.text(name_start);
                        self.emit(Kind::Identifier, t);
                    }
                }
                '|' => {
                    self.accept("|");
                    let t = self.text(start);
                    self.emit(Kind::Operator, t);
                }
                ':' => {
                    self.accept(":");
                    let t = self.text(start);
                    self.emit(Kind::Operator, t);
                }
                '(' | '[' | '{' | ')' | ']' | '}' => self.emit(Kind::Bracket, c.to_string()),
                ',' | ';' | '%' | '+' | '-' | '^' => self.emit(Kind::Operator, c.to_string()),
                '&' | '!' | '=' | '*' | '<' | '>' => {
                    self.accept("&=*");
                    let t = self.text(start);
                    self.emit(Kind::Operator, t);
                }
                '.' => {
                    if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.pos = start;
                        self.number()?;
                    } else {
                        self.accept(".");
                        let t = self.text(start);
                        self.emit(Kind::Operator, t);
                    }
                }
                c if is_alnum(c) => {
                    while self.peek().is_some_and(is_alnum) {
                        self.pos += 1;
                    }
                    let word = self.text(start);
                    self.word(word);
                }
                c => {
                    return Err(format!("unrecognized character: U+{:04X} '{c}'", c as u32));
                }
            }
        }
    }

    fn word(&mut self, word: String) {
        match word.as_str() {
            "not" => {
                self.emit(Kind::Operator, "not");
                // `not in`, `not matches`, ... are lexed as two operator tokens.
                let save = self.pos;
                while self.peek() == Some(' ') {
                    self.pos += 1;
                }
                let start = self.pos;
                while self.peek().is_some_and(is_alnum) {
                    self.pos += 1;
                }
                let next = self.text(start);
                if matches!(
                    next.as_str(),
                    "in" | "matches" | "contains" | "startsWith" | "endsWith"
                ) {
                    self.emit(Kind::Operator, next);
                } else {
                    self.pos = save;
                }
            }
            "in" | "or" | "and" | "matches" | "contains" | "startsWith" | "endsWith" | "let"
            | "if" | "else" => self.emit(Kind::Operator, word),
            _ => self.emit(Kind::Identifier, word),
        }
    }

    fn number(&mut self) -> Result<(), String> {
        let start = self.pos;
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        while self.accept(digits) {}
        let before_dot = self.pos;
        if self.accept(".") {
            if self.peek() == Some('.') {
                // `1..2` is a range, not a float.
                self.pos = before_dot;
                let t = self.text(start);
                self.emit(Kind::Number, t);
                return Ok(());
            }
            while self.accept(digits) {}
        }
        if self.accept("eE") {
            self.accept("+-");
            while self.accept(digits) {}
        }
        if self.peek().is_some_and(is_alnum) {
            self.pos += 1;
            return Err(format!(
                "bad number syntax: {}",
                go_quote(&self.text(start))
            ));
        }
        let t = self.text(start);
        self.emit(Kind::Number, t);
        Ok(())
    }

    fn scan_raw(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err("literal not terminated".into()),
                Some('`') if self.peek() == Some('`') => {
                    self.pos += 1;
                    out.push('`');
                }
                Some('`') => return Ok(out.replace("\r\n", "\n").replace('\r', "\n")),
                Some(c) => out.push(c),
            }
        }
    }

    fn hex_digits(&mut self, base: u32, n: usize) -> Result<u32, String> {
        let mut v: u32 = 0;
        for _ in 0..n {
            match self.peek().and_then(|c| c.to_digit(base)) {
                Some(d) => {
                    self.pos += 1;
                    v = v.wrapping_mul(base).wrapping_add(d);
                }
                None => return Err("invalid char escape".into()),
            }
        }
        Ok(v)
    }

    /// A quoted literal: Go escapes (`\a \b \f \n \r \t \v \\ \' \" \NNN \xHH \uHHHH \u{H..} \UHHHHHHHH`).
    fn scan_quoted(&mut self, quote: char) -> Result<Vec<u8>, String> {
        let mut out: Vec<u8> = Vec::new();
        let push = |out: &mut Vec<u8>, c: char| {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        };
        loop {
            let Some(c) = self.bump() else {
                return Err("literal not terminated".into());
            };
            if c == quote {
                return Ok(out);
            }
            match c {
                '\n' => return Err("literal not terminated".into()),
                '\r' => {
                    // Go normalizes newlines before unescaping; a raw CR is taken as a newline,
                    // which cannot appear in an interpreted literal.
                    return Err("literal not terminated".into());
                }
                '\\' => {
                    let Some(e) = self.bump() else {
                        return Err("literal not terminated".into());
                    };
                    match e {
                        'a' => out.push(7),
                        'b' => out.push(8),
                        'f' => out.push(12),
                        'n' => out.push(b'\n'),
                        'r' => out.push(b'\r'),
                        't' => out.push(b'\t'),
                        'v' => out.push(11),
                        '\\' => out.push(b'\\'),
                        '\'' | '"' => {
                            if e != quote {
                                return Err("invalid char escape".into());
                            }
                            push(&mut out, e);
                        }
                        '0'..='7' => {
                            self.pos -= 1;
                            let v = self.hex_digits(8, 3)?;
                            if v > 255 {
                                return Err("invalid char escape".into());
                            }
                            out.push(v as u8);
                        }
                        'x' => {
                            let v = self.hex_digits(16, 2)?;
                            out.push(v as u8);
                        }
                        'u' if self.peek() == Some('{') => {
                            self.pos += 1;
                            let start = self.pos;
                            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                self.pos += 1;
                            }
                            let n = self.pos - start;
                            if n == 0 || n > 6 || self.peek() != Some('}') {
                                return Err("invalid char escape".into());
                            }
                            let v = u32::from_str_radix(&self.text(start), 16)
                                .map_err(|_| "invalid char escape".to_string())?;
                            self.pos += 1;
                            push(&mut out, char::from_u32(v).unwrap_or('\u{fffd}'));
                        }
                        'u' => {
                            let v = self.hex_digits(16, 4)?;
                            push(&mut out, char::from_u32(v).unwrap_or('\u{fffd}'));
                        }
                        'U' => {
                            let v = self.hex_digits(16, 8)?;
                            match char::from_u32(v) {
                                Some(c) => push(&mut out, c),
                                None => return Err("invalid char escape".into()),
                            }
                        }
                        _ => return Err("invalid char escape".into()),
                    }
                }
                c => push(&mut out, c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<String> {
        lex(s).unwrap().iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn operators_and_words() {
        assert_eq!(
            kinds("a not in b && c?.d ?? 1..2"),
            [
                "Identifier(\"a\")",
                "Operator(\"not\")",
                "Operator(\"in\")",
                "Identifier(\"b\")",
                "Operator(\"&&\")",
                "Identifier(\"c\")",
                "Operator(\"?.\")",
                "Identifier(\"d\")",
                "Operator(\"??\")",
                "Number(\"1\")",
                "Operator(\"..\")",
                "Number(\"2\")",
                "EOF"
            ]
        );
    }

    #[test]
    fn escapes_follow_go() {
        let t = lex(r#""a\x41\101\u0041\u{41}\U00000041\n\\n" 'it\'s'"#).unwrap();
        assert_eq!(t[0].value, "aAAAAA\n\\n");
        assert_eq!(t[1].value, "it's");
        assert_eq!(lex(r#""\q""#).unwrap_err(), "invalid char escape");
        assert_eq!(lex("\"abc").unwrap_err(), "literal not terminated");
        assert_eq!(lex("`a``b`").unwrap()[0].value, "a`b");
    }

    #[test]
    fn lexing_errors() {
        assert_eq!(lex("1a").unwrap_err(), "bad number syntax: \"1a\"");
        assert_eq!(lex("@").unwrap_err(), "unrecognized character: U+0040 '@'");
        assert_eq!(lex("/* x").unwrap_err(), "unclosed comment");
    }
}
