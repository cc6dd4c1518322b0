//! The COVID-19 task's data: loading a table of cumulative confirmed cases per country and
//! day (three CSV layouts, detected from the header), and preparing it for training
//! (daily new cases, correlation between countries, the correlated set C, labelled windows
//! split into train and test, and every country's last window for forecasting).
//!
//! - `load`: [`CaseTable`], layout detection and validation, country lookup.
//! - `wide`, `long`: the parsers of the wide (coursework, JHU CSSE) and long layouts.
//! - `prep`: the coursework pipeline, [`prepare`].
//! - `days`: whether a start date and window length fit the data, [`check_window`].

pub mod backtest;
pub mod days;
pub mod load;
mod long;
pub mod prep;
pub mod rolling;
mod wide;

#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests_country;
#[cfg(test)]
mod tests_load;
#[cfg(test)]
mod tests_prep;

pub use days::{check_window, daily_dates};
pub use load::{CaseTable, Layout};
pub use prep::{
    CovidData, PrepOptions, Split, Windows, correlated_set, correlation_matrix, daily_new,
    normalise, pearson, prepare, windows,
};
