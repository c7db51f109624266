"""Adapter: rule html_page -> sdssclr.results.pages.markdown_page."""

from sdssclr.results.pages import markdown_page
from sdssclr.io import log_to

with log_to(snakemake.log[0]):
    markdown_page(snakemake.input[0], snakemake.output[0], title=snakemake.wildcards.page)
