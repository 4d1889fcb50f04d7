//! `~/.mylogin.cnf` (`--login-path NAME`), the obfuscated option file `mysql_config_editor`
//! writes. Format (MySQL's `mysys/mf_loginpath` and `mysql_config_editor`): 4 unused bytes, a
//! 20-byte key, then records of a 4-byte little-endian length and that many bytes of one
//! option-file line encrypted with AES-128-ECB and PKCS#7 padding. The AES key is the 20-byte
//! key folded onto 16 bytes by XOR (`aes_key[i % 16] ^= key[i]`). This is obfuscation, not
//! protection: anyone who can read the file can read the password, which is why the file must
//! not be readable by others (the mysql client skips it then; so does privfence).
//!
//! The decrypted text is option-file syntax; [`super::mycnf`] parses it.

use crate::error::{Error, Result};
use aes::cipher::{BlockDecrypt, KeyInit};
use std::path::{Path, PathBuf};

/// Where the login-path file is: `$MYSQL_TEST_LOGIN_FILE`, else `~/.mylogin.cnf`.
pub fn default_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("MYSQL_TEST_LOGIN_FILE").map(PathBuf::from).or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".mylogin.cnf")))
}

fn bad(path: &Path, why: &str) -> Error {
    Error::BadInput(format!("{}: not a login-path file written by mysql_config_editor ({why})", path.display()))
}

/// The file's option-file text.
pub fn decrypt(path: &Path, bytes: &[u8]) -> Result<String> {
    if bytes.len() < 24 {
        return Err(bad(path, "shorter than its 24-byte header"));
    }
    let mut key = [0u8; 16];
    for (i, b) in bytes[4..24].iter().enumerate() {
        key[i % 16] ^= b;
    }
    let cipher = aes::Aes128::new(&key.into());
    let mut text = String::new();
    let mut rest = &bytes[24..];
    while rest.len() >= 4 {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        if len == 0 || !len.is_multiple_of(16) || len > rest.len() {
            return Err(bad(path, "a record's length is not a whole number of AES blocks"));
        }
        let mut line = rest[..len].to_vec();
        rest = &rest[len..];
        for block in line.chunks_mut(16) {
            cipher.decrypt_block(block.into());
        }
        let pad = *line.last().unwrap_or(&0) as usize;
        if pad == 0 || pad > 16 || line[line.len() - pad..].iter().any(|b| *b as usize != pad) {
            return Err(bad(path, "bad padding: wrong key or a damaged file"));
        }
        line.truncate(line.len() - pad);
        text.push_str(&String::from_utf8(line).map_err(|_| bad(path, "a line is not UTF-8"))?);
    }
    Ok(text)
}

/// Encrypts option-file text into the login-path format with `key` (for tests and for
/// writing fixtures; privfence itself never writes the file).
pub fn encrypt(text: &str, key: [u8; 20]) -> Vec<u8> {
    use aes::cipher::BlockEncrypt;
    let mut aes_key = [0u8; 16];
    for (i, b) in key.iter().enumerate() {
        aes_key[i % 16] ^= b;
    }
    let cipher = aes::Aes128::new(&aes_key.into());
    let mut out = vec![0u8; 4];
    out.extend_from_slice(&key);
    for line in text.split_inclusive('\n') {
        let mut buf = line.as_bytes().to_vec();
        let pad = 16 - buf.len() % 16;
        buf.extend(std::iter::repeat_n(pad as u8, pad));
        for block in buf.chunks_mut(16) {
            cipher.encrypt_block(block.into());
        }
        out.extend_from_slice(&(buf.len() as u32).to_le_bytes());
        out.extend_from_slice(&buf);
    }
    out
}

/// Reads the file into a temporary option file's text; `None` when it does not exist.
/// Refused when others can read it (as the mysql client refuses it).
pub fn read(path: &Path) -> Result<Option<String>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::BadInput(format!("{}: {e}", path.display()))),
    };
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::BadInput(format!(
            "{}: readable by others (mode {:o}); `chmod 600` it (the mysql client ignores such a file too)",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::BadInput(format!("{}: {e}", path.display())))?;
    decrypt(path, &bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = "[client]\nuser = \"admin\"\npassword = \"s3 cret\"\n[prod]\nhost = \"db1\"\nport = 3307\n";
        let key = *b"0123456789abcdefghij";
        let bytes = encrypt(text, key);
        assert!(!bytes.windows(5).any(|w| w == b"s3 cr"), "obfuscated");
        assert_eq!(decrypt(Path::new("x"), &bytes).unwrap(), text);
        let mut broken = bytes.clone();
        broken[10] ^= 1;
        assert!(decrypt(Path::new("x"), &broken).is_err() || decrypt(Path::new("x"), &broken).unwrap() != text);
        assert!(decrypt(Path::new("x"), &bytes[..10]).is_err());
    }
}
