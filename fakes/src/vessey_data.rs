//! The records the fake Vessey serves: a small hand-written sample, or a large generated data
//! set for benchmarks. Both give the same collections for a date every time (collection ids
//! carry the date), and any date has collections.

use chrono::{DateTime, Duration as TimeDelta, NaiveDate, NaiveTime, Utc};
use serde::Serialize;

/// A Vessey driver, as `/drivers` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Driver {
    /// Vessey's id.
    pub id: String,
    /// Full name.
    pub name: String,
    /// As typed into Vessey: loose formats, sometimes absent.
    pub phone: Option<String>,
    /// Email, sometimes absent.
    pub email: Option<String>,
    /// Inactive drivers are still listed.
    pub active: bool,
}

/// A Vessey collection (a farm pick-up), as `/collections` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Collection {
    /// Unique across dates.
    pub id: String,
    /// Matches a company's `external_id` in Director.
    pub farm_id: String,
    /// The farm's name.
    pub farm_name: String,
    /// The assigned driver, if any.
    pub driver_id: Option<String>,
    /// The day asked for.
    pub scheduled_for: NaiveDate,
    /// Pick-up window, when known.
    pub window_start: Option<DateTime<Utc>>,
    /// Pick-up window end, when known.
    pub window_end: Option<DateTime<Utc>>,
    /// Expected volume, when known.
    pub volume_liters: Option<f64>,
}

/// One page of a listing and the number of the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct PageOf<T> {
    /// The records on this page.
    pub items: Vec<T>,
    /// The next page, or `None` on the last page.
    pub next_page: Option<u32>,
}

/// The size of a generated data set ([`VesseyData::generated`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratedSpec {
    /// Collections on every date.
    pub collections_per_day: u32,
    /// Records per page, drivers and collections alike.
    pub page_size: u32,
    /// Distinct farms the collections are spread over.
    pub farms: u32,
    /// Drivers (`"1"` ..= `drivers`); every 50th is inactive.
    pub drivers: u32,
}

impl Default for GeneratedSpec {
    /// The benchmark's day: 100,000 collections over 500 farms, pages of 1,000, 200 drivers.
    fn default() -> Self {
        Self {
            collections_per_day: 100_000,
            page_size: 1_000,
            farms: 500,
            drivers: 200,
        }
    }
}

/// What the fake Vessey knows.
#[derive(Debug, Clone)]
pub enum VesseyData {
    /// Five drivers (one inactive, loosely formatted phones) and twenty collections a day over
    /// six farms; pages of 8.
    Sample,
    /// Deterministic records computed on the fly for each page.
    Generated(GeneratedSpec),
}

const SAMPLE_PAGE_SIZE: u32 = 8;

/// `(farm index, driver id, minutes after 04:00 UTC the window opens, window length in
/// minutes, litres)`; `None` window or volume for records Vessey has not planned yet.
type SampleCollection = (usize, Option<&'static str>, Option<(i64, i64)>, Option<f64>);

const SAMPLE_FARMS: [(&str, &str); 6] = [
    ("farm-1", "Green Acres Dairy"),
    ("farm-2", "Hillside Farm"),
    ("farm-3", "Meadowbrook Dairy"),
    ("farm-4", "Oak Valley Farm"),
    ("farm-5", "Riverbend Creamery"),
    ("farm-6", "Sunny Slope Farm"),
];

const SAMPLE_COLLECTIONS: [SampleCollection; 20] = [
    (0, Some("1"), Some((0, 60)), Some(4200.0)),
    (1, Some("1"), Some((75, 45)), Some(3100.5)),
    (2, Some("2"), Some((30, 60)), Some(5600.0)),
    (3, None, Some((120, 60)), Some(2500.0)),
    (4, Some("3"), Some((0, 90)), None),
    (5, Some("2"), Some((180, 60)), Some(1800.0)),
    (0, None, None, Some(4100.0)),
    (1, Some("4"), Some((240, 30)), Some(3000.0)),
    (2, Some("3"), Some((300, 60)), Some(5200.0)),
    (3, Some("1"), Some((360, 60)), Some(2600.0)),
    (4, None, None, None),
    (5, Some("4"), Some((420, 45)), Some(1750.0)),
    (0, Some("2"), Some((480, 60)), Some(4300.0)),
    (1, None, Some((540, 60)), Some(2950.0)),
    (2, Some("1"), Some((600, 90)), Some(5400.0)),
    (3, Some("3"), Some((660, 60)), Some(2450.0)),
    (4, Some("4"), Some((720, 60)), Some(3900.0)),
    (5, None, Some((780, 30)), Some(1900.0)),
    (0, Some("3"), Some((840, 60)), Some(4000.0)),
    (1, Some("2"), Some((900, 60)), None),
];

fn sample_drivers() -> Vec<Driver> {
    let driver = |id: &str, name: &str, phone: Option<&str>, email: Option<&str>, active| Driver {
        id: id.to_owned(),
        name: name.to_owned(),
        phone: phone.map(str::to_owned),
        email: email.map(str::to_owned),
        active,
    };
    vec![
        driver(
            "1",
            "Ann Murphy",
            Some("(555) 010-0001"),
            Some("ann@example.com"),
            true,
        ),
        driver(
            "2",
            "Bob Okafor",
            Some("+1 555 010 0002"),
            Some("bob@example.com"),
            true,
        ),
        driver(
            "3",
            "Carla Jones",
            Some("+44 7700 900123"),
            Some("carla@example.co.uk"),
            true,
        ),
        driver("4", "Dev Patel", None, Some("dev@example.com"), true),
        driver("5", "Eve Stone", Some("555.010.0005"), None, false),
    ]
}

impl VesseyData {
    /// The hand-written sample.
    pub fn sample() -> Self {
        Self::Sample
    }

    /// A generated data set of this size.
    pub fn generated(spec: GeneratedSpec) -> Self {
        Self::Generated(spec)
    }

    fn page_size(&self) -> u32 {
        match self {
            Self::Sample => SAMPLE_PAGE_SIZE,
            Self::Generated(spec) => spec.page_size.max(1),
        }
    }

    fn driver_count(&self) -> u32 {
        match self {
            Self::Sample => 5,
            Self::Generated(spec) => spec.drivers,
        }
    }

    /// Every driver, in id order.
    pub fn all_drivers(&self) -> Vec<Driver> {
        match self {
            Self::Sample => sample_drivers(),
            Self::Generated(spec) => (1..=spec.drivers).map(generated_driver).collect(),
        }
    }

    /// The driver with this id.
    pub fn driver(&self, id: &str) -> Option<Driver> {
        match self {
            Self::Sample => sample_drivers().into_iter().find(|d| d.id == id),
            Self::Generated(spec) => id
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=spec.drivers).contains(n) && id == n.to_string())
                .map(generated_driver),
        }
    }

    /// Page `page` (from 1) of the drivers.
    pub fn drivers_page(&self, page: u32) -> PageOf<Driver> {
        let (range, next_page) = page_range(page, self.page_size(), self.driver_count());
        let items = match self {
            Self::Sample => {
                let all = sample_drivers();
                range.filter_map(|i| all.get(i as usize).cloned()).collect()
            }
            Self::Generated(_) => range.map(|i| generated_driver(i + 1)).collect(),
        };
        PageOf { items, next_page }
    }

    /// Every collection of `date`.
    pub fn all_collections(&self, date: NaiveDate) -> Vec<Collection> {
        let mut all = Vec::new();
        let mut page = Some(1);
        while let Some(number) = page {
            let next = self.collections_page(date, number);
            all.extend(next.items);
            page = next.next_page;
        }
        all
    }

    /// Page `page` (from 1) of the collections of `date`.
    pub fn collections_page(&self, date: NaiveDate, page: u32) -> PageOf<Collection> {
        let total = match self {
            Self::Sample => SAMPLE_COLLECTIONS.len() as u32,
            Self::Generated(spec) => spec.collections_per_day,
        };
        let (range, next_page) = page_range(page, self.page_size(), total);
        let items = match self {
            Self::Sample => range
                .filter_map(|i| sample_collection(date, i as usize))
                .collect(),
            Self::Generated(spec) => range.map(|i| generated_collection(spec, date, i)).collect(),
        };
        PageOf { items, next_page }
    }
}

/// The record indexes on page `page` of `total` and the next page number.
fn page_range(page: u32, page_size: u32, total: u32) -> (std::ops::Range<u32>, Option<u32>) {
    let start = page.saturating_sub(1).saturating_mul(page_size).min(total);
    let end = start.saturating_add(page_size).min(total);
    let next_page = (end < total).then(|| page.saturating_add(1));
    (start..end, next_page)
}

fn at(date: NaiveDate, minutes_after_four: i64) -> DateTime<Utc> {
    let four = NaiveTime::from_hms_opt(4, 0, 0).unwrap_or_default();
    (date.and_time(four) + TimeDelta::minutes(minutes_after_four)).and_utc()
}

fn sample_collection(date: NaiveDate, index: usize) -> Option<Collection> {
    let (farm, driver, window, volume) = *SAMPLE_COLLECTIONS.get(index)?;
    let (farm_id, farm_name) = SAMPLE_FARMS.get(farm)?;
    Some(Collection {
        id: format!("col-{date}-{:02}", index + 1),
        farm_id: (*farm_id).to_owned(),
        farm_name: (*farm_name).to_owned(),
        driver_id: driver.map(str::to_owned),
        scheduled_for: date,
        window_start: window.map(|(start, _)| at(date, start)),
        window_end: window.map(|(start, length)| at(date, start + length)),
        volume_liters: volume,
    })
}

fn generated_driver(n: u32) -> Driver {
    Driver {
        id: n.to_string(),
        name: format!("Driver {n}"),
        phone: (!n.is_multiple_of(10))
            .then(|| format!("+1 555 {:03} {:04}", n / 10_000 % 1000, n % 10_000)),
        email: (!n.is_multiple_of(7)).then(|| format!("driver{n}@example.com")),
        active: !n.is_multiple_of(50),
    }
}

fn generated_collection(spec: &GeneratedSpec, date: NaiveDate, index: u32) -> Collection {
    let farm = index % spec.farms.max(1) + 1;
    let driver = match spec.drivers {
        0 => None,
        drivers => (!index.is_multiple_of(5)).then(|| (index % drivers + 1).to_string()),
    };
    let start = i64::from(index % 960);
    let window = (!index.is_multiple_of(13)).then_some(start);
    Collection {
        id: format!("col-{date}-{:06}", index + 1),
        farm_id: format!("farm-{farm}"),
        farm_name: format!("Farm {farm}"),
        driver_id: driver,
        scheduled_for: date,
        window_start: window.map(|start| at(date, start)),
        window_end: window.map(|start| at(date, start + 60)),
        volume_liters: (!index.is_multiple_of(11)).then(|| f64::from(1_000 + index * 37 % 9_000)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    #[test]
    fn the_sample_has_twenty_collections_over_six_farms_on_three_pages() {
        let data = VesseyData::sample();
        let pages: Vec<_> = (1..=3).map(|p| data.collections_page(day(), p)).collect();
        assert_eq!(pages[0].next_page, Some(2));
        assert_eq!(pages[1].next_page, Some(3));
        assert_eq!(pages[2].next_page, None);
        let all = data.all_collections(day());
        assert_eq!(all.len(), 20);
        let farms: std::collections::BTreeSet<_> = all.iter().map(|c| &c.farm_id).collect();
        assert_eq!(farms.len(), 6);
        assert!(all.iter().any(|c| c.driver_id.is_none()));
        assert!(all.iter().any(|c| c.window_start.is_none()));
        assert!(all.iter().all(|c| c.scheduled_for == day()));
    }

    #[test]
    fn collection_ids_differ_between_dates_and_repeat_for_the_same_date() {
        let data = VesseyData::sample();
        let other = day().succ_opt().unwrap();
        assert_eq!(data.all_collections(day()), data.all_collections(day()));
        assert_ne!(
            data.all_collections(day())[0].id,
            data.all_collections(other)[0].id
        );
    }

    #[test]
    fn generated_pages_cover_every_collection_exactly_once() {
        let spec = GeneratedSpec {
            collections_per_day: 2_500,
            page_size: 1_000,
            farms: 7,
            drivers: 3,
        };
        let data = VesseyData::generated(spec);
        let last = data.collections_page(day(), 3);
        assert_eq!(last.items.len(), 500);
        assert_eq!(last.next_page, None);
        let all = data.all_collections(day());
        let ids: std::collections::HashSet<_> = all.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids.len(), 2_500);
        assert!(
            all.iter()
                .filter_map(|c| c.driver_id.as_ref())
                .all(|d| data.driver(d).is_some())
        );
    }

    #[test]
    fn a_page_past_the_end_is_empty_and_last() {
        let page = VesseyData::sample().drivers_page(4);
        assert!(page.items.is_empty());
        assert_eq!(page.next_page, None);
    }

    #[test]
    fn generated_driver_lookup_rejects_non_canonical_ids() {
        let data = VesseyData::generated(GeneratedSpec::default());
        assert!(data.driver("7").is_some());
        assert!(data.driver("007").is_none());
        assert!(data.driver("0").is_none());
        assert!(data.driver("201").is_none());
    }
}
