//! Token bytes in, text out: whole UTF-8 characters only, and nothing that may be the start of
//! a stop string until it is known not to be. Shared by [`Generator`](crate::Generator) and
//! [`Batcher`](crate::Batcher) (one stream per sequence).

/// The text state of one generation.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextStream {
    /// Bytes of an incomplete UTF-8 character.
    partial: Vec<u8>,
    /// Decoded text not yet returned (may be the start of a stop string).
    held: String,
    stops: Vec<String>,
}

impl TextStream {
    pub(crate) fn new(stops: &[String]) -> TextStream {
        TextStream {
            partial: Vec::new(),
            held: String::new(),
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
        }
    }

    /// Appends a token's bytes; complete characters move to the held text (invalid bytes
    /// become U+FFFD).
    pub(crate) fn push(&mut self, piece: &[u8]) {
        self.partial.extend_from_slice(piece);
        loop {
            match std::str::from_utf8(&self.partial) {
                Ok(s) => {
                    self.held.push_str(s);
                    self.partial.clear();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    self.held
                        .push_str(std::str::from_utf8(&self.partial[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // Incomplete character at the end: wait for more bytes.
                        None => {
                            self.partial.drain(..valid);
                            return;
                        }
                        Some(bad) => {
                            self.held.push(char::REPLACEMENT_CHARACTER);
                            self.partial.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// If the held text contains a stop string: the text before the earliest one, and that
    /// stop string. The stream is then empty.
    pub(crate) fn take_until_stop(&mut self) -> Option<(String, String)> {
        let (at, stop) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()).map(|at| (at, s.clone())))
            .min_by_key(|(at, _)| *at)?;
        self.held.truncate(at);
        self.partial.clear();
        Some((std::mem::take(&mut self.held), stop))
    }

    /// Takes the text that cannot be the beginning of a stop string.
    pub(crate) fn releasable(&mut self) -> String {
        let hold = self
            .stops
            .iter()
            .map(|stop| longest_prefix_suffix(&self.held, stop))
            .max()
            .unwrap_or(0);
        let split = self.held.len() - hold;
        let rest = self.held.split_off(split);
        std::mem::replace(&mut self.held, rest)
    }

    /// Everything left, an incomplete character included (lossily), at the end.
    pub(crate) fn finish(&mut self) -> String {
        let mut text = std::mem::take(&mut self.held);
        if !self.partial.is_empty() {
            text.push_str(&String::from_utf8_lossy(&self.partial));
            self.partial.clear();
        }
        text
    }
}

/// Length of the longest proper prefix of `stop` that `text` ends with (at a char boundary).
pub(crate) fn longest_prefix_suffix(text: &str, stop: &str) -> usize {
    (1..stop.len())
        .rev()
        .filter(|&n| stop.is_char_boundary(n))
        .find(|&n| text.ends_with(&stop[..n]))
        .unwrap_or(0)
}
