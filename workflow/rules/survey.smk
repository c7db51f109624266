if SOURCE == "synthetic":

    rule synthetic_survey:
        """Offline synthetic survey: a catalogue and SDSS-format frames (never real data)."""
        output:
            catalog=catalog_path(),
            photometric=photometric_path(),
            truth="results/survey/truth.parquet",
            frames=directory(frames_root()),
        log:
            "results/logs/synthetic_survey.log",
        benchmark:
            "results/benchmarks/synthetic_survey.tsv"
        conda:
            "../../envs/data.yaml"
        threads: 8
        resources:
            mem_mb=4000,
            runtime=120,
        params:
            synthetic=config["synthetic"],
        script:
            "../scripts/synthetic_survey.py"

else:

    rule sdss_catalog:
        """The pool of every class from SkyServer (paged, throttled, retried), or a CasJobs export."""
        input:
            catalog_file_input(),
        output:
            catalog_path(),
        log:
            "results/logs/sdss_catalog.log",
        localrule: True
        conda:
            "../../envs/data.yaml"
        params:
            data_release=config["survey"]["data_release"],
            cuts=config["cuts"],
        script:
            "../scripts/sdss_catalog.py"

    rule sdss_photometric:
        """Photometric objects without spectra in the labelled sample's fields (SkyServer or CasJobs)."""
        input:
            splits=expand("results/splits/{experiment}.parquet", experiment=EXPERIMENTS),
            export=photometric_file_input(),
        output:
            photometric_path(),
        log:
            "results/logs/sdss_photometric.log",
        localrule: True
        conda:
            "../../envs/data.yaml"
        params:
            data_release=config["survey"]["data_release"],
            cuts=config["cuts"],
            unlabelled=config["unlabelled"],
        script:
            "../scripts/sdss_photometric.py"
