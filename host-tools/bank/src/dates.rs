//! Calendar arithmetic on `token::Date` (Gregorian, proleptic), for the token's validity period.

use token::Date;

/// Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `date` plus `days`; `None` if `date` is not a real day or the result is past year 9999.
pub fn add_days(date: Date, days: u16) -> Option<Date> {
    let (year, month, day) = date.ymd()?;
    let (year, month, day) = civil_from_days(
        days_from_civil(i64::from(year), i64::from(month), i64::from(day)) + i64::from(days),
    );
    Date::from_ymd(
        u16::try_from(year).ok()?,
        u8::try_from(month).ok()?,
        u8::try_from(day).ok()?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: u16, m: u8, d: u8) -> Date {
        Date::from_ymd(y, m, d).unwrap()
    }

    #[test]
    fn adds_across_months_years_and_leap_days() {
        assert_eq!(add_days(date(2026, 12, 1), 0), Some(date(2026, 12, 1)));
        assert_eq!(add_days(date(2026, 12, 1), 61), Some(date(2027, 1, 31)));
        assert_eq!(add_days(date(2028, 2, 28), 1), Some(date(2028, 2, 29)));
        assert_eq!(add_days(date(2100, 2, 28), 1), Some(date(2100, 3, 1)));
        assert_eq!(add_days(date(2000, 2, 28), 366), Some(date(2001, 2, 28)));
        assert_eq!(add_days(date(9999, 12, 31), 1), None);
        assert_eq!(add_days(Date([0x20, 0x26, 0x02, 0x30]), 1), None);
    }
}
