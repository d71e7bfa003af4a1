"""Probe ``mmmu``: MMMU's validation split (``MMMU/MMMU``, its 30 subject configs read one
after the other; open questions are skipped: only multiple-choice items are probed)."""

from __future__ import annotations

from probes._benchmark import Benchmark, register_benchmark

SUBJECTS = (
    "Accounting", "Agriculture", "Architecture_and_Engineering", "Art", "Art_Theory", "Basic_Medical_Science",
    "Biology", "Chemistry", "Clinical_Medicine", "Computer_Science", "Design",
    "Diagnostics_and_Laboratory_Medicine", "Economics", "Electronics", "Energy_and_Power", "Finance",
    "Geography", "History", "Literature", "Manage", "Marketing", "Materials", "Math", "Mechanical_Engineering",
    "Music", "Pharmacy", "Physics", "Psychology", "Public_Health", "Sociology",
)

register_benchmark(Benchmark(
    "mmmu", "MMMU/MMMU", SUBJECTS, "validation", "mmmu",
    "Yue et al. 2024, MMMU (CVPR 2024, arXiv:2311.16502)", "900 (multiple choice only)", "2-9",
), "MMMU validation: college-level questions over 30 subjects, images interleaved with text")
