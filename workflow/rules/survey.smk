if SOURCE == "synthetic":

    rule synthetic_survey:
        """Offline synthetic survey: a catalogue and SDSS-format frames (never real data)."""
        output:
            catalog="results/survey/catalog.parquet",
            photometric="results/survey/photometric.parquet",
            truth="results/survey/truth.parquet",
            frames=directory("results/survey/frames"),
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
        """The pool of every class from SkyServer (paged, throttled, retried) and the objects of
        the object lists, or a CasJobs export."""
        input:
            export=catalog_file_input(),
            objid_lists=catalog_lists()[0],
        output:
            catalog="results/survey/catalog.parquet",
        log:
            "results/logs/sdss_catalog.log",
        localrule: True
        conda:
            "../../envs/data.yaml"
        params:
            data_release=config["survey"]["data_release"],
            # the query selects the compact regime; the faint cuts are applied by the pool rule
            cuts=cuts_of("compact", config["cuts"]),
            # whether some dataset is drawn from without a list (else only listed objects are fetched)
            pool_query=catalog_lists()[1],
        script:
            "../scripts/sdss_catalog.py"

    rule sdss_photometric:
        """Photometric objects without spectra in the fields of one dataset's labelled sample, for
        one split seed (SkyServer or CasJobs)."""
        input:
            samples=lambda wc: samples_of(
                GRAPH.field_experiments(wc.dataset), [wc.split]
            ),
            export=photometric_file_input(),
        output:
            photometric="results/survey/photometric/split{split}/{dataset}.parquet",
        log:
            "results/logs/sdss_photometric_{dataset}_split{split}.log",
        localrule: True
        conda:
            "../../envs/data.yaml"
        params:
            data_release=config["survey"]["data_release"],
            # the compact regime's photometric cuts; the unlabelled rule applies the dataset's own
            cuts=cuts_of("compact", config["cuts"]),
            unlabelled=config["unlabelled"],
        script:
            "../scripts/sdss_photometric.py"


# The survey's products, whichever rule makes them: the labelled catalogue and the frames the
# stamp jobs depend on (the synthetic tree; SDSS frames come from survey.frames_dir or are
# streamed by the stamp jobs). The photometric objects: common.smk's photometric_objects.
if SOURCE == "synthetic":
    CATALOG = rules.synthetic_survey.output.catalog
    FRAMES = rules.synthetic_survey.output.frames
else:
    CATALOG = rules.sdss_catalog.output.catalog
    FRAMES = []
