"""Stage 1, the survey: the SDSS catalogue (SkyServer, CasJobs exports), the frame files and
where they are fetched from, and the offline synthetic survey that writes the same files."""
