//! QR codes for enrolling a TOTP authenticator: drawn in the terminal by `client create --otp`,
//! and as SVG for the web console.
//!
//! Two modules per character cell (unicode half blocks), with the standard quiet zone of four
//! modules. Light modules are drawn, dark ones left blank: on the usual light-on-dark terminal
//! that is dark-on-light, as scanners expect. On a terminal, ANSI colours pin white on black so
//! that a light theme shows it the same way (unless `NO_COLOR` is set).

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// `data` as an SVG image (dark modules on white, with the quiet zone), for the console.
pub fn svg(data: &str) -> anyhow::Result<String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| anyhow::anyhow!("cannot draw the otpauth URI as a QR code: {e}"))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(220, 220).quiet_zone(true).build())
}

/// `data` as lines of half-block characters; `ansi` adds the colours for a terminal.
pub fn render(data: &str, ansi: bool) -> anyhow::Result<String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| anyhow::anyhow!("cannot draw the otpauth URI as a QR code: {e}"))?;
    let image = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .module_dimensions(1, 1)
        .build();
    let mut out = String::with_capacity(image.len() * 2);
    for line in image.lines() {
        if ansi {
            // Bright white foreground (the blocks) on black (the blanks), then reset.
            out.push_str("\x1b[97;40m");
            out.push_str(line);
            out.push_str("\x1b[0m");
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Ok(out)
}

/// Whether stdout gets colours: a terminal, and `NO_COLOR` unset or empty.
pub fn ansi_for_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reads a rendered code back: a drawn half is a light module. Scaled up so that the
    /// detector sees modules several pixels wide, as a camera would.
    pub(crate) fn decode(text: &str) -> Result<String, String> {
        let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
        let width = lines.iter().map(Vec::len).max().unwrap_or(0);
        let height = lines.len() * 2;
        let light = |x: usize, y: usize| -> bool {
            let c = lines[y / 2].get(x).copied().unwrap_or(' ');
            let top = y.is_multiple_of(2);
            matches!((c, top), ('█', _) | ('▀', true) | ('▄', false))
        };
        const SCALE: usize = 4;
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(width * SCALE, height * SCALE, |x, y| {
            if light(x / SCALE, y / SCALE) { 255 } else { 0 }
        });
        let grids = img.detect_grids();
        let grid = grids.first().ok_or("no QR code found")?;
        grid.decode().map(|(_, content)| content).map_err(|e| e.to_string())
    }

    #[test]
    fn the_code_decodes_to_the_uri() {
        let uri = "otpauth://totp/tokensmith:deploy-bot%20(cli_3vQk0ZcO0mB1m4v8Xq2L)?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=tokensmith";
        let text = render(uri, false).unwrap();
        assert_eq!(decode(&text).unwrap(), uri);
        // Only half blocks and blanks, the quiet zone drawn: the first line is all blocks.
        assert!(text.chars().all(|c| matches!(c, ' ' | '█' | '▀' | '▄' | '\n')));
        assert!(text.lines().next().unwrap().chars().all(|c| c == '█'));
    }

    #[test]
    fn ansi_colours_wrap_each_line() {
        let text = render("otpauth://totp/x?secret=AAAA", true).unwrap();
        assert!(text.lines().all(|l| l.starts_with("\x1b[97;40m") && l.ends_with("\x1b[0m")));
    }

    #[test]
    fn a_code_that_differs_does_not_decode_to_the_uri() {
        let text = render("otpauth://totp/a?secret=AAAA", false).unwrap();
        assert_ne!(decode(&text).unwrap(), "otpauth://totp/b?secret=AAAA");
    }
}
