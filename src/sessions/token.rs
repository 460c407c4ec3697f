//! Token names: what a well-formed one looks like, and minting random ones.

/// The longest token name accepted.
pub const MAX_TOKEN_LEN: usize = 128;

/// A token is 1–128 characters of letters, digits, `_`, `-` and `.`, so it can travel in a
/// header, a file name and a log line without escaping.
pub fn is_well_formed(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// How a token appears in logs: minted tokens authenticate TCP clients, so only a prefix is
/// logged; chosen names (`default`, `agent-1`) are short and logged whole.
pub fn for_log(token: &str) -> String {
    if token.chars().count() > 16 {
        // By characters: a byte slice could split one and panic on text that is not a token.
        format!("{}…", token.chars().take(8).collect::<String>())
    } else {
        token.to_string()
    }
}

/// A new random token with 160 bits from the operating system's generator.
pub fn mint() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sfd_{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_tokens() {
        assert!(is_well_formed("default"));
        assert!(is_well_formed("agent-1.session_2"));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed("has space"));
        assert!(!is_well_formed("semi;colon"));
        assert!(!is_well_formed(&"x".repeat(129)));
        assert!(!is_well_formed("tökén"));
        assert!(!is_well_formed("\u{ff}default"));
        assert!(!is_well_formed("a\0b"));
    }

    #[test]
    fn long_tokens_are_shortened_in_logs() {
        let minted = mint().unwrap();
        assert_eq!(for_log(&minted), format!("{}…", &minted[..8]));
        assert_eq!(for_log("default"), "default");
        assert_eq!(for_log("ééééééééééééééééé"), "éééééééé…");
    }

    #[test]
    fn minted_tokens_are_random_and_well_formed() {
        let a = mint().unwrap();
        let b = mint().unwrap();
        assert_ne!(a, b);
        assert!(is_well_formed(&a));
        assert_eq!(a.len(), 4 + 40);
    }
}
