//! G.711 µ-law (PCMU) and A-law (PCMA) codecs (ITU-T G.711).
//!
//! Encoding follows the reference segment search; decoding uses 256-entry tables
//! built at compile time, so the per-sample cost on the receive path is a load.
//! Checked exhaustively against an independent implementation in the tests.

const BIAS: i32 = 0x84;

/// Encodes one linear 16-bit sample to µ-law (ITU-T G.191 reference method:
/// 14-bit magnitude, ones' complement for negative samples).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let x = sample as i32;
    let mut absno = if x < 0 {
        ((!x) >> 2) + 33
    } else {
        (x >> 2) + 33
    };
    absno = absno.min(0x1FFF);
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high = 0x08 - segno;
    let low = 0x0F - ((absno >> segno) & 0x0F);
    let y = (high << 4) | low;
    (if x >= 0 { y | 0x80 } else { y }) as u8
}

const fn ulaw_to_linear_const(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one linear 16-bit sample to A-law (ITU-T G.191 reference method).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let x = sample as i32;
    let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
    if ix > 15 {
        let mut iexp = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if x >= 0 {
        ix |= 0x80;
    }
    (ix ^ 0x55) as u8
}

const fn alaw_to_linear_const(a: u8) -> i16 {
    let a = a ^ 0x55;
    let exponent = ((a & 0x70) >> 4) as i32;
    let mut t = ((a & 0x0F) as i32) << 4;
    t = match exponent {
        0 => t + 8,
        1 => t + 0x108,
        _ => (t + 0x108) << (exponent - 1),
    };
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

const fn table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_to_linear_const(i as u8)
        } else {
            ulaw_to_linear_const(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_TABLE: [i16; 256] = table(false);
static ALAW_TABLE: [i16; 256] = table(true);

#[inline]
pub fn ulaw_to_linear(u: u8) -> i16 {
    ULAW_TABLE[u as usize]
}

#[inline]
pub fn alaw_to_linear(a: u8) -> i16 {
    ALAW_TABLE[a as usize]
}

/// The two G.711 laws, with their static RTP payload types (RFC 3551).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    pub fn encode(self, s: i16) -> u8 {
        match self {
            Codec::Pcmu => linear_to_ulaw(s),
            Codec::Pcma => linear_to_alaw(s),
        }
    }

    pub fn decode(self, b: u8) -> i16 {
        match self {
            Codec::Pcmu => ulaw_to_linear(b),
            Codec::Pcma => alaw_to_linear(b),
        }
    }

    /// The encoding of silence, used to pad the last frame of a prompt.
    pub fn silence(self) -> u8 {
        self.encode(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_points() {
        // Values from the G.711 tables: 0 encodes to 0xFF (µ) and 0xD5 (A).
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    #[test]
    fn exhaustive_against_independent_implementation() {
        use audio_codec_algorithms as r;
        for s in i16::MIN..=i16::MAX {
            assert_eq!(linear_to_ulaw(s), r::encode_ulaw(s), "ulaw encode {s}");
            assert_eq!(linear_to_alaw(s), r::encode_alaw(s), "alaw encode {s}");
        }
        for b in 0..=255u8 {
            assert_eq!(ulaw_to_linear(b), r::decode_ulaw(b), "ulaw decode {b}");
            assert_eq!(alaw_to_linear(b), r::decode_alaw(b), "alaw decode {b}");
        }
    }
}
