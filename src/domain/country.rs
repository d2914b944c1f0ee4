/// ISO 3166-1 alpha-2 codes (the 249 officially assigned).
const CODES: &str = "\
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS \
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE \
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM \
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC \
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA \
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO \
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// A country as its ISO 3166-1 alpha-2 code, upper case (`de` is accepted as `DE`).
pub fn country_code(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() == 2 && CODES.split(' ').any(|c| c == code) {
        Ok(code)
    } else {
        Err("must be an ISO 3166-1 alpha-2 country code such as DE or US".to_owned())
    }
}

/// An ISO 4217 currency code: three upper-case letters (`EUR`).
pub fn currency_code(code: &str) -> Result<String, String> {
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(code.to_owned())
    } else {
        Err("must be an ISO 4217 code in upper case, such as EUR".to_owned())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes() {
        assert_eq!(super::CODES.split(' ').count(), 249);
        assert_eq!(super::country_code(" de ").ok().as_deref(), Some("DE"));
        assert!(super::country_code("XX").is_err());
        assert!(super::country_code("DEU").is_err());
    }
}
