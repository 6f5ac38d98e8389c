//! Post-processing of a finished run: reads only the run folder and writes
//! aggregates, plots and `report.html`.
