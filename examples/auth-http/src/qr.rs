//! The QR code of a TOTP enrolment's `otpauth://` URI, as an SVG image: what
//! `POST /mfa/totp/setup` answers as `qr_svg`, for pages that show it themselves.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// `uri` as a QR code in SVG: medium error correction, a quiet zone, at least 200 px.
///
/// # Errors
///
/// When `uri` is too long for a QR code (some 2,300 bytes at this correction level).
///
/// ```
/// let image = auth_http::qr::svg("otpauth://totp/Example:ada%40example.com?secret=JBSWY3DPEHPK3PXP").unwrap();
/// assert!(image.contains("<svg"));
/// assert!(auth_http::qr::svg(&"x".repeat(5000)).is_err());
/// ```
pub fn svg(uri: &str) -> Result<String, qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M)?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_uri_becomes_an_svg_image() {
        let image =
            super::svg("otpauth://totp/Example:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example").unwrap();
        assert!(
            image.starts_with("<?xml") && image.contains("<svg") && image.ends_with("</svg>"),
            "{image}"
        );
    }
}
