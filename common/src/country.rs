//! Country names and ISO 3166-1 alpha-2 codes, carried in code so that the world map and
//! `--country` arguments work without a lookup file. Besides the ISO English short names,
//! the table knows the names the Johns Hopkins CSSE data uses (`Taiwan*`, `Korea, South`,
//! `US`, `Burma`, ...) and common English names, and [`suggest`] ranks close matches for
//! "did you mean" messages.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Every ISO 3166-1 alpha-2 code with its English short name (ISO spelling; Taiwan is given
/// its common name). `XK` (Kosovo) is not an ISO code but a user-assigned one that the EU,
/// JHU CSSE and most map data use, so it is carried too.
const COUNTRIES: &[(&str, &str)] = &[
    ("AD", "Andorra"),
    ("AE", "United Arab Emirates"),
    ("AF", "Afghanistan"),
    ("AG", "Antigua and Barbuda"),
    ("AI", "Anguilla"),
    ("AL", "Albania"),
    ("AM", "Armenia"),
    ("AO", "Angola"),
    ("AQ", "Antarctica"),
    ("AR", "Argentina"),
    ("AS", "American Samoa"),
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("AW", "Aruba"),
    ("AX", "Åland Islands"),
    ("AZ", "Azerbaijan"),
    ("BA", "Bosnia and Herzegovina"),
    ("BB", "Barbados"),
    ("BD", "Bangladesh"),
    ("BE", "Belgium"),
    ("BF", "Burkina Faso"),
    ("BG", "Bulgaria"),
    ("BH", "Bahrain"),
    ("BI", "Burundi"),
    ("BJ", "Benin"),
    ("BL", "Saint Barthélemy"),
    ("BM", "Bermuda"),
    ("BN", "Brunei Darussalam"),
    ("BO", "Bolivia, Plurinational State of"),
    ("BQ", "Bonaire, Sint Eustatius and Saba"),
    ("BR", "Brazil"),
    ("BS", "Bahamas"),
    ("BT", "Bhutan"),
    ("BV", "Bouvet Island"),
    ("BW", "Botswana"),
    ("BY", "Belarus"),
    ("BZ", "Belize"),
    ("CA", "Canada"),
    ("CC", "Cocos (Keeling) Islands"),
    ("CD", "Congo, The Democratic Republic of the"),
    ("CF", "Central African Republic"),
    ("CG", "Congo"),
    ("CH", "Switzerland"),
    ("CI", "Côte d'Ivoire"),
    ("CK", "Cook Islands"),
    ("CL", "Chile"),
    ("CM", "Cameroon"),
    ("CN", "China"),
    ("CO", "Colombia"),
    ("CR", "Costa Rica"),
    ("CU", "Cuba"),
    ("CV", "Cabo Verde"),
    ("CW", "Curaçao"),
    ("CX", "Christmas Island"),
    ("CY", "Cyprus"),
    ("CZ", "Czechia"),
    ("DE", "Germany"),
    ("DJ", "Djibouti"),
    ("DK", "Denmark"),
    ("DM", "Dominica"),
    ("DO", "Dominican Republic"),
    ("DZ", "Algeria"),
    ("EC", "Ecuador"),
    ("EE", "Estonia"),
    ("EG", "Egypt"),
    ("EH", "Western Sahara"),
    ("ER", "Eritrea"),
    ("ES", "Spain"),
    ("ET", "Ethiopia"),
    ("FI", "Finland"),
    ("FJ", "Fiji"),
    ("FK", "Falkland Islands (Malvinas)"),
    ("FM", "Micronesia, Federated States of"),
    ("FO", "Faroe Islands"),
    ("FR", "France"),
    ("GA", "Gabon"),
    ("GB", "United Kingdom"),
    ("GD", "Grenada"),
    ("GE", "Georgia"),
    ("GF", "French Guiana"),
    ("GG", "Guernsey"),
    ("GH", "Ghana"),
    ("GI", "Gibraltar"),
    ("GL", "Greenland"),
    ("GM", "Gambia"),
    ("GN", "Guinea"),
    ("GP", "Guadeloupe"),
    ("GQ", "Equatorial Guinea"),
    ("GR", "Greece"),
    ("GS", "South Georgia and the South Sandwich Islands"),
    ("GT", "Guatemala"),
    ("GU", "Guam"),
    ("GW", "Guinea-Bissau"),
    ("GY", "Guyana"),
    ("HK", "Hong Kong"),
    ("HM", "Heard Island and McDonald Islands"),
    ("HN", "Honduras"),
    ("HR", "Croatia"),
    ("HT", "Haiti"),
    ("HU", "Hungary"),
    ("ID", "Indonesia"),
    ("IE", "Ireland"),
    ("IL", "Israel"),
    ("IM", "Isle of Man"),
    ("IN", "India"),
    ("IO", "British Indian Ocean Territory"),
    ("IQ", "Iraq"),
    ("IR", "Iran, Islamic Republic of"),
    ("IS", "Iceland"),
    ("IT", "Italy"),
    ("JE", "Jersey"),
    ("JM", "Jamaica"),
    ("JO", "Jordan"),
    ("JP", "Japan"),
    ("KE", "Kenya"),
    ("KG", "Kyrgyzstan"),
    ("KH", "Cambodia"),
    ("KI", "Kiribati"),
    ("KM", "Comoros"),
    ("KN", "Saint Kitts and Nevis"),
    ("KP", "Korea, Democratic People's Republic of"),
    ("KR", "Korea, Republic of"),
    ("KW", "Kuwait"),
    ("KY", "Cayman Islands"),
    ("KZ", "Kazakhstan"),
    ("LA", "Lao People's Democratic Republic"),
    ("LB", "Lebanon"),
    ("LC", "Saint Lucia"),
    ("LI", "Liechtenstein"),
    ("LK", "Sri Lanka"),
    ("LR", "Liberia"),
    ("LS", "Lesotho"),
    ("LT", "Lithuania"),
    ("LU", "Luxembourg"),
    ("LV", "Latvia"),
    ("LY", "Libya"),
    ("MA", "Morocco"),
    ("MC", "Monaco"),
    ("MD", "Moldova, Republic of"),
    ("ME", "Montenegro"),
    ("MF", "Saint Martin (French part)"),
    ("MG", "Madagascar"),
    ("MH", "Marshall Islands"),
    ("MK", "North Macedonia"),
    ("ML", "Mali"),
    ("MM", "Myanmar"),
    ("MN", "Mongolia"),
    ("MO", "Macao"),
    ("MP", "Northern Mariana Islands"),
    ("MQ", "Martinique"),
    ("MR", "Mauritania"),
    ("MS", "Montserrat"),
    ("MT", "Malta"),
    ("MU", "Mauritius"),
    ("MV", "Maldives"),
    ("MW", "Malawi"),
    ("MX", "Mexico"),
    ("MY", "Malaysia"),
    ("MZ", "Mozambique"),
    ("NA", "Namibia"),
    ("NC", "New Caledonia"),
    ("NE", "Niger"),
    ("NF", "Norfolk Island"),
    ("NG", "Nigeria"),
    ("NI", "Nicaragua"),
    ("NL", "Netherlands"),
    ("NO", "Norway"),
    ("NP", "Nepal"),
    ("NR", "Nauru"),
    ("NU", "Niue"),
    ("NZ", "New Zealand"),
    ("OM", "Oman"),
    ("PA", "Panama"),
    ("PE", "Peru"),
    ("PF", "French Polynesia"),
    ("PG", "Papua New Guinea"),
    ("PH", "Philippines"),
    ("PK", "Pakistan"),
    ("PL", "Poland"),
    ("PM", "Saint Pierre and Miquelon"),
    ("PN", "Pitcairn"),
    ("PR", "Puerto Rico"),
    ("PS", "Palestine, State of"),
    ("PT", "Portugal"),
    ("PW", "Palau"),
    ("PY", "Paraguay"),
    ("QA", "Qatar"),
    ("RE", "Réunion"),
    ("RO", "Romania"),
    ("RS", "Serbia"),
    ("RU", "Russian Federation"),
    ("RW", "Rwanda"),
    ("SA", "Saudi Arabia"),
    ("SB", "Solomon Islands"),
    ("SC", "Seychelles"),
    ("SD", "Sudan"),
    ("SE", "Sweden"),
    ("SG", "Singapore"),
    ("SH", "Saint Helena, Ascension and Tristan da Cunha"),
    ("SI", "Slovenia"),
    ("SJ", "Svalbard and Jan Mayen"),
    ("SK", "Slovakia"),
    ("SL", "Sierra Leone"),
    ("SM", "San Marino"),
    ("SN", "Senegal"),
    ("SO", "Somalia"),
    ("SR", "Suriname"),
    ("SS", "South Sudan"),
    ("ST", "Sao Tome and Principe"),
    ("SV", "El Salvador"),
    ("SX", "Sint Maarten (Dutch part)"),
    ("SY", "Syrian Arab Republic"),
    ("SZ", "Eswatini"),
    ("TC", "Turks and Caicos Islands"),
    ("TD", "Chad"),
    ("TF", "French Southern Territories"),
    ("TG", "Togo"),
    ("TH", "Thailand"),
    ("TJ", "Tajikistan"),
    ("TK", "Tokelau"),
    ("TL", "Timor-Leste"),
    ("TM", "Turkmenistan"),
    ("TN", "Tunisia"),
    ("TO", "Tonga"),
    ("TR", "Türkiye"),
    ("TT", "Trinidad and Tobago"),
    ("TV", "Tuvalu"),
    ("TW", "Taiwan"),
    ("TZ", "Tanzania, United Republic of"),
    ("UA", "Ukraine"),
    ("UG", "Uganda"),
    ("UM", "United States Minor Outlying Islands"),
    ("US", "United States"),
    ("UY", "Uruguay"),
    ("UZ", "Uzbekistan"),
    ("VA", "Holy See (Vatican City State)"),
    ("VC", "Saint Vincent and the Grenadines"),
    ("VE", "Venezuela, Bolivarian Republic of"),
    ("VG", "Virgin Islands, British"),
    ("VI", "Virgin Islands, U.S."),
    ("VN", "Viet Nam"),
    ("VU", "Vanuatu"),
    ("WF", "Wallis and Futuna"),
    ("WS", "Samoa"),
    ("XK", "Kosovo"),
    ("YE", "Yemen"),
    ("YT", "Mayotte"),
    ("ZA", "South Africa"),
    ("ZM", "Zambia"),
    ("ZW", "Zimbabwe"),
];

/// Other names for the same codes: the JHU CSSE spellings first (they are what the data
/// files contain), then common English names and ASCII spellings of accented names.
const ALIASES: &[(&str, &str)] = &[
    ("Taiwan*", "TW"),
    ("Korea, South", "KR"),
    ("Korea, North", "KP"),
    ("US", "US"),
    ("Burma", "MM"),
    ("Congo (Kinshasa)", "CD"),
    ("Congo (Brazzaville)", "CG"),
    ("Cote d'Ivoire", "CI"),
    ("Holy See", "VA"),
    ("West Bank and Gaza", "PS"),
    ("Laos", "LA"),
    ("Russia", "RU"),
    ("Syria", "SY"),
    ("Iran", "IR"),
    ("Vietnam", "VN"),
    ("Bolivia", "BO"),
    ("Venezuela", "VE"),
    ("Tanzania", "TZ"),
    ("Moldova", "MD"),
    ("Brunei", "BN"),
    ("Micronesia", "FM"),
    ("Turkey", "TR"),
    ("Mainland China", "CN"),
    ("occupied Palestinian territory", "PS"),
    ("South Korea", "KR"),
    ("Republic of Korea", "KR"),
    ("North Korea", "KP"),
    ("United States of America", "US"),
    ("USA", "US"),
    ("UK", "GB"),
    ("Great Britain", "GB"),
    ("Democratic Republic of the Congo", "CD"),
    ("DR Congo", "CD"),
    ("Republic of the Congo", "CG"),
    ("Ivory Coast", "CI"),
    ("Vatican", "VA"),
    ("Vatican City", "VA"),
    ("Palestine", "PS"),
    ("Czech Republic", "CZ"),
    ("Macedonia", "MK"),
    ("Swaziland", "SZ"),
    ("Cape Verde", "CV"),
    ("East Timor", "TL"),
    ("Bahamas, The", "BS"),
    ("The Bahamas", "BS"),
    ("Gambia, The", "GM"),
    ("The Gambia", "GM"),
    ("Falkland Islands", "FK"),
    ("Macau", "MO"),
    ("Hong Kong SAR", "HK"),
    ("Aland Islands", "AX"),
    ("Saint Barthelemy", "BL"),
    ("Curacao", "CW"),
    ("Reunion", "RE"),
    ("Saint Martin", "MF"),
    ("Sint Maarten", "SX"),
    ("British Virgin Islands", "VG"),
    ("US Virgin Islands", "VI"),
    ("United States Virgin Islands", "VI"),
    ("Saint Helena", "SH"),
    ("Pitcairn Islands", "PN"),
    ("Turkiye", "TR"),
];

/// Lower-cases, trims and collapses inner whitespace, so that `" korea,  south "` finds
/// `Korea, South`.
fn key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Name (normalised by [`key`]) → code, built once from both tables.
fn by_name() -> &'static HashMap<String, &'static str> {
    static MAP: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    MAP.get_or_init(|| {
        COUNTRIES
            .iter()
            .map(|&(code, name)| (key(name), code))
            .chain(ALIASES.iter().map(|&(name, code)| (key(name), code)))
            .collect()
    })
}

/// The ISO 3166-1 alpha-2 code of a country name: case-insensitive, surrounding and
/// repeated whitespace ignored; accepts ISO short names, the JHU CSSE names (`Taiwan*`,
/// `Korea, South`, `US`, ...) and common English names. `None` for names without a code
/// (`Diamond Princess`, `MS Zaandam`, `Summer Olympics 2020`) and unknown names.
pub fn iso2_of(name: &str) -> Option<&'static str> {
    by_name().get(&key(name)).copied()
}

/// The English short name of an ISO 3166-1 alpha-2 code (case-insensitive), e.g.
/// `name_of("kr") == Some("Korea, Republic of")`.
pub fn name_of(iso2: &str) -> Option<&'static str> {
    let code = iso2.trim();
    COUNTRIES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code))
        .map(|&(_, name)| name)
}

/// The `n` candidates closest to `query`, best first, for "did you mean" messages.
///
/// Ranking, all case-insensitive: candidates that start with the query, then those that
/// contain it, then the rest by edit distance (insertions, deletions, substitutions and
/// swaps of neighbours, so `Tawian` is one edit from `Taiwan`). Candidates more than half
/// the query's length (at least 2) edits away are dropped: they are noise, not typos.
pub fn suggest(query: &str, candidates: &[&str], n: usize) -> Vec<String> {
    let q = key(query);
    if q.is_empty() {
        return Vec::new();
    }
    let max_distance = (q.chars().count() / 2).max(2);
    let mut ranked: Vec<(u8, usize, usize, &str)> = Vec::new();
    for (order, &candidate) in candidates.iter().enumerate() {
        let c = key(candidate);
        let rank = if c.starts_with(&q) {
            (0, c.len())
        } else if c.contains(&q) {
            (1, c.len())
        } else {
            let d = edit_distance(&q, &c);
            if d > max_distance {
                continue;
            }
            (2, d)
        };
        ranked.push((rank.0, rank.1, order, candidate));
    }
    ranked.sort();
    let mut out: Vec<String> = Vec::new();
    for (_, _, _, candidate) in ranked {
        if out.len() == n {
            break;
        }
        if !out.iter().any(|o| key(o) == key(candidate)) {
            out.push(candidate.to_string());
        }
    }
    out
}

/// Optimal-string-alignment distance: Levenshtein plus swaps of two neighbouring
/// characters, the commonest typo in country names.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows suffice: the swap looks two rows back.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_every_code_once() {
        // 249 ISO 3166-1 codes plus the user-assigned XK.
        assert_eq!(COUNTRIES.len(), 250);
        let mut codes: Vec<&str> = COUNTRIES.iter().map(|(c, _)| *c).collect();
        assert!(
            codes.windows(2).all(|w| w[0] < w[1]),
            "table sorted by code"
        );
        codes.dedup();
        assert_eq!(codes.len(), 250);
        for &(code, name) in COUNTRIES {
            assert!(code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()));
            assert_eq!(iso2_of(name), Some(code), "{name}");
        }
        for &(alias, code) in ALIASES {
            assert!(
                name_of(code).is_some(),
                "alias {alias} points at unknown {code}"
            );
        }
    }

    #[test]
    fn jhu_aliases() {
        let cases = [
            ("Taiwan*", "TW"),
            ("Korea, South", "KR"),
            ("US", "US"),
            ("Burma", "MM"),
            ("Congo (Kinshasa)", "CD"),
            ("Congo (Brazzaville)", "CG"),
            ("Cote d'Ivoire", "CI"),
            ("Holy See", "VA"),
            ("West Bank and Gaza", "PS"),
            ("Kosovo", "XK"),
            ("Czechia", "CZ"),
            ("North Macedonia", "MK"),
            ("Eswatini", "SZ"),
            ("Cabo Verde", "CV"),
            ("Timor-Leste", "TL"),
            ("Laos", "LA"),
            ("Russia", "RU"),
            ("Syria", "SY"),
            ("Iran", "IR"),
            ("Vietnam", "VN"),
            ("Bolivia", "BO"),
            ("Venezuela", "VE"),
            ("Tanzania", "TZ"),
            ("Moldova", "MD"),
            ("Brunei", "BN"),
            ("Micronesia", "FM"),
            ("Korea, North", "KP"),
        ];
        for (name, code) in cases {
            assert_eq!(iso2_of(name), Some(code), "{name}");
        }
        for name in [
            "Diamond Princess",
            "MS Zaandam",
            "Summer Olympics 2020",
            "Atlantis",
        ] {
            assert_eq!(iso2_of(name), None, "{name}");
        }
    }

    #[test]
    fn matching_ignores_case_and_spacing() {
        assert_eq!(iso2_of("  korea,   SOUTH "), Some("KR"));
        assert_eq!(iso2_of("taiwan*"), Some("TW"));
        assert_eq!(iso2_of("côte d'ivoire"), Some("CI"));
        assert_eq!(name_of("kr"), Some("Korea, Republic of"));
        assert_eq!(name_of(" xk "), Some("Kosovo"));
        assert_eq!(name_of("QQ"), None);
    }

    #[test]
    fn suggestions() {
        let names = [
            "Tajikistan",
            "Taiwan*",
            "Thailand",
            "Tanzania",
            "Korea, South",
            "US",
        ];
        let s = suggest("Tawian", &names, 3);
        assert_eq!(s.first().map(String::as_str), Some("Taiwan*"), "{s:?}");
        assert_eq!(suggest("korea", &names, 3), ["Korea, South"]);
        assert_eq!(suggest("ta", &names, 2), ["Taiwan*", "Tanzania"]);
        assert!(suggest("zzzzzzzz", &names, 3).is_empty());
        assert!(suggest("", &names, 3).is_empty());
    }

    #[test]
    fn edit_distance_counts_swaps_once() {
        assert_eq!(edit_distance("tawian", "taiwan"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }
}
