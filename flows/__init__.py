"""Prefect flows of the lab pipeline: thin orchestrations of ``lims`` services, one per
stage, plus the scheduled maintenance flow (see flows.common for what they share).

``ENTRYPOINTS`` lists every deployable flow as ``path:function`` (what
``flow.from_source(...).deploy(...)`` and ``prefect deploy`` take), relative to the
repository root.
"""

ENTRYPOINTS: dict[str, str] = {
    "lipoaspirate-intake": "flows/intake.py:lipoaspirate_intake",
    "svf-separation": "flows/svf.py:svf_separation",
    "culture-seeding": "flows/culture.py:culture_seeding",
    "culture-passage": "flows/culture.py:culture_passage",
    "hypoxia-start": "flows/conditioning.py:hypoxia_start",
    "cm-harvest": "flows/conditioning.py:cm_harvest",
    "lot-fill-and-lyophilisation": "flows/lot.py:lot_fill_and_lyophilisation",
    "lot-qc": "flows/qc.py:lot_qc",
    "follicle-duplication": "flows/follicle.py:follicle_duplication",
    "dp-culture": "flows/follicle.py:dp_culture",
    "dose-allocation": "flows/dispatch.py:dose_allocation",
    "dose-dispatch": "flows/dispatch.py:dose_dispatch",
    "clinic-receipt": "flows/dispatch.py:clinic_receipt",
    "lab-maintenance": "flows/maintenance.py:lab_maintenance",
    "lot-recall": "flows/recall.py:lot_recall",
}
