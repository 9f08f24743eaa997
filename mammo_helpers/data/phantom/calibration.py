"""The phantom's calibration constants, each with what it sets and what it was tuned against.

Every number that was chosen to make the phantom behave like real mammograms (rather than
taken from physics, see :mod:`.physics`) is defined here once and imported by the generator.
:func:`calibration_table` lists them with their target, the source of that target and the
validation check of :mod:`mammo_helpers.data.phantom.validation` that measures it, so that
chapter 00 can show them as a table. "Chosen" in the target column means no measurement
was tuned against: the value is a plausible modelling choice.

Sources cited below:

- Nicholson BT et al. Accuracy of assigned BI-RADS breast density category definitions.
  Acad Radiol 13:1143 (2006) - median area percent density of reader categories.
- Badano A et al. Evaluation of digital breast tomosynthesis as replacement of full-field
  digital mammography using an in silico imaging trial (VICTRE). JAMA Netw Open 1:e185474
  (2018) - density presets, mass and calcification materials, reader AUCs.
- Yaffe MJ et al. The myth of the 50-50 breast. Med Phys 36:5437 (2009).
- Moshina N et al. Breast compression parameters and mammographic density in the
  Norwegian Breast Cancer Screening Programme. Eur Radiol 28:1662 (2018).
- Burgess AE, Jacobson FL, Judy PF. Human observer detection experiments with mammograms
  and power-law noise. Med Phys 28:419 (2001); Chen L, Abbey CK, Boone JM. Association
  between power law coefficients of the anatomical noise power spectrum and lesion
  detectability in breast imaging modalities. Med Phys 39:1435 (2012).
- Carroll FE et al. Attenuation of monochromatic X-rays by normal and abnormal breast
  tissues. Invest Radiol 29:266 (1994).
- Johns PC, Yaffe MJ. X-ray characterisation of normal and neoplastic breast tissues.
  Phys Med Biol 32:675 (1987).
- Nguyen HT et al. VinDr-Mammo: a large-scale benchmark dataset for computer-aided
  diagnosis in full-field digital mammography. Sci Data 10:277 (2023) - box sizes.

Used by the generator (chapter 00) and shown in chapter 00.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------- density and reader
#: Median volumetric glandular fraction of the latent density classes A, B, C, D.
VGF_MEDIAN = (0.08, 0.15, 0.32, 0.55)
#: Log-normal spread of a patient's glandular fraction around its class median.
VGF_LOG_SD = 0.22
#: Reader cut points on area percent density (%) between A|B, B|C and C|D.
PD_CUTPOINTS = (8.0, 30.0, 68.0)
#: Projected glandular fraction above which a pixel counts as dense (true area PD).
DENSE_FRACTION_THRESHOLD = 0.28
#: Standard deviation of a reader's bias, in percent-density points (PhantomConfig default).
READER_NOISE_PD = 6.0

# -------------------------------------------------------------------- breast size
#: Mean and standard deviation of the compressed thickness (mm).
THICKNESS_MEAN_MM = 59.0
THICKNESS_SD_MM = 16.0
#: Correlation of compressed thickness with the (log) glandular fraction.
THICKNESS_GLAND_CORR = -0.6

# -------------------------------------------------------------------------- tissue
#: Range of the 3-D power-law exponent of the glandular tissue field.
BETA3D_RANGE = (3.4, 3.9)
#: Width of the gland/fat transition of the thresholded field (in field standard deviations).
GLAND_PARTIAL_VOLUME = 0.6
#: Weight of the glandular envelope (central, retro-areolar bias) against the random field.
ENVELOPE_WEIGHT = 1.6
#: Subcutaneous fat layer kept free of glandular tissue (mm).
SUBCUTANEOUS_FAT_MM = 5.0

# ----------------------------------------------------------------- DBT and s2D images
#: Thickness of the in-focus slab of the simulated DBT central slice (mm).
DBT_SLAB_MM = 4.0
#: Weight of the in-focus slab against the tomographically blurred rest of the breast.
DBT_SLAB_WEIGHT = 0.7
#: High-frequency boost imitating the ramp filter of filtered back-projection.
DBT_RECON_BOOST = 1.0
#: Scale (Gaussian sigma, mm) below which the DBT reconstruction boost acts.
DBT_RECON_SIGMA_MM = 2.0
#: Weight of the in-focus high-pass structure added to DM in a synthesized 2-D image.
S2D_HIGHPASS_WEIGHT = 0.35
#: Scale (Gaussian sigma, mm) of that high-pass structure.
S2D_HIGHPASS_SIGMA_MM = 1.0

# --------------------------------------------------------------------- acquisition
#: Photons per 0.1 mm pixel at the median breast pixel (automatic exposure control, dose 1).
N0_PHOTONS = 4000.0
#: Electronic noise standard deviation as a fraction of N0_PHOTONS.
ELECTRONIC_NOISE = 0.002
#: Scatter-to-primary ratio inside the breast (SiteProfile default).
SCATTER_FRACTION = 0.25
#: Spread of the scatter (Gaussian sigma, mm).
SCATTER_RANGE_MM = 15.0

# --------------------------------------------------------------------------- lesions
#: Range of mass / glandular-tissue linear attenuation.
MASS_ATTENUATION_RATIO = (1.06, 1.15)
#: Range of calcification / glandular-tissue linear attenuation.
CALC_ATTENUATION_RATIO = (12.0, 25.0)
#: Attenuation of architectural-distortion strands relative to glandular tissue.
STRAND_ATTENUATION_RATIO = 1.05
#: Range of the radial pull of an architectural distortion (fraction of its radius).
DISTORTION_WARP = (0.3, 0.5)
#: Range of the glandular-envelope boost that draws an asymmetry.
ASYMMETRY_BOOST = (1.2, 2.2)
#: Mass diameter: log-normal median (mm), log standard deviation, clip range (mm).
MASS_DIAMETER_MM = (12.0, 0.4, 5.0, 35.0)
#: Calcification cluster extent: log-normal median (mm), log sd, clip range (mm).
CALC_CLUSTER_MM = (11.0, 0.35, 5.0, 30.0)
#: Share of masses hidden in one of the two views.
MASS_OCCULT_FRACTION = 0.08


@dataclass(frozen=True)
class CalibrationConstant:
    """One calibration constant: its name here, value, unit and what it was tuned against."""

    name: str
    value: object
    unit: str
    sets: str  # what the constant controls in the phantom
    target: str  # the measured behaviour it was tuned against ("chosen" if none)
    source: str  # where the target comes from
    check: str  # the validation check that measures the target ("" if none)


_VICTRE = "Badano et al. 2018 (VICTRE)"
_NICHOLSON = "Nicholson et al. 2006"
_BETA = "Burgess et al. 2001; Chen, Abbey & Boone 2012"


def _row(name: str, *, unit: str, sets: str, target: str, source: str = "", check: str = ""):
    return CalibrationConstant(name, globals()[name], unit, sets, target, source, check)


CALIBRATION: tuple[CalibrationConstant, ...] = (
    _row(
        "VGF_MEDIAN",
        unit="fraction",
        sets="median volumetric glandular fraction of latent classes A-D",
        target="adapted from VICTRE's density presets 5 / 15 / 34 / 60 % (fatty end raised, dense "
        "end lowered); with PD_CUTPOINTS: reader-class median area PD 6 / 15 / 51 / 78 %",
        source=f"{_VICTRE}; {_NICHOLSON}",
        check="cohort manifest: exam_pd_true by density",
    ),
    _row(
        "VGF_LOG_SD",
        unit="log units",
        sets="spread of the glandular fraction within a latent class",
        target="overlapping PD ranges of the reader classes (0.5-19 / 1.2-53 / 16-82 / 60-88 %)",
        source=_NICHOLSON,
        check="cohort manifest: exam_pd_true by density",
    ),
    _row(
        "PD_CUTPOINTS",
        unit="% area",
        sets="reader's BI-RADS class from the exam's area percent density",
        target="reader-class median area PD 6.0 / 14.8 / 51.2 / 78.4 %",
        source=_NICHOLSON,
        check="cohort manifest: exam_pd_true by density",
    ),
    _row(
        "DENSE_FRACTION_THRESHOLD",
        unit="fraction",
        sets="projected glandular fraction that counts as dense in the true area PD",
        target="with VGF_MEDIAN and PD_CUTPOINTS: reader-class median area PD 6 / 15 / 51 / 78 %",
        source=_NICHOLSON,
        check="density_check",
    ),
    _row(
        "READER_NOISE_PD",
        unit="PD points",
        sets="standard deviation of a reader's bias on the exam's percent density",
        target="chosen: reader categories that disagree with the truth near the cut points "
        "(three readers agreed on 49 % of 200 exams)",
        source=_NICHOLSON,
    ),
    _row(
        "THICKNESS_MEAN_MM",
        unit="mm",
        sets="mean compressed thickness",
        target="5.9 cm mean compressed thickness",
        source="Yaffe et al. 2009",
    ),
    _row(
        "THICKNESS_SD_MM",
        unit="mm",
        sets="spread of the compressed thickness",
        target="1.6 cm standard deviation",
        source="Yaffe et al. 2009",
    ),
    _row(
        "THICKNESS_GLAND_CORR",
        unit="correlation",
        sets="thinner breasts are denser",
        target="thickness vs percent dense volume rho = -0.56 (CC), -0.62 (MLO)",
        source="Moshina et al. 2018",
    ),
    _row(
        "BETA3D_RANGE",
        unit="exponent",
        sets="3-D power-law exponent of the glandular tissue field (raised from 3.2-3.7)",
        target="DM power-spectrum beta 2.8-3.3 (about 3.2 CC, 3.3 MLO); DBT slices lower",
        source=_BETA,
        check="beta_check",
    ),
    _row(
        "GLAND_PARTIAL_VOLUME",
        unit="field sd",
        sets="softness of the gland/fat boundary (thresholding lowers the projected beta)",
        target="DM power-spectrum beta 2.8-3.3 (with BETA3D_RANGE)",
        source=_BETA,
        check="beta_check",
    ),
    _row(
        "ENVELOPE_WEIGHT",
        unit="field sd",
        sets="central / retro-areolar concentration of glandular tissue",
        target="chosen: glandular tissue concentrated behind the nipple, as in mammograms",
    ),
    _row(
        "SUBCUTANEOUS_FAT_MM",
        unit="mm",
        sets="fat layer under the skin without glandular tissue",
        target="chosen: a few millimetres of subcutaneous fat",
    ),
    _row(
        "DBT_SLAB_MM",
        unit="mm",
        sets="thickness of the in-focus slab of the simulated DBT slice",
        target="DBT beta below DM; DBT mass AUC above DM (VICTRE: 0.96 vs 0.90)",
        source=f"{_BETA}; {_VICTRE}",
        check="beta_check, observer_check",
    ),
    _row(
        "DBT_SLAB_WEIGHT",
        unit="fraction",
        sets="weight of the in-focus slab against the blurred rest of the breast",
        target="DBT beta below DM; DBT mass AUC above DM (VICTRE: 0.96 vs 0.90)",
        source=f"{_BETA}; {_VICTRE}",
        check="beta_check, observer_check",
    ),
    _row(
        "DBT_RECON_BOOST",
        unit="gain",
        sets="high-pass boost of the DBT slice (the ramp filter of filtered back-projection)",
        target="DBT mass AUC near VICTRE's 0.96 (above DM's 0.90)",
        source=_VICTRE,
        check="observer_check",
    ),
    _row(
        "DBT_RECON_SIGMA_MM",
        unit="mm",
        sets="scale below which the DBT boost acts",
        target="DBT mass AUC near VICTRE's 0.96 (with DBT_RECON_BOOST)",
        source=_VICTRE,
        check="observer_check",
    ),
    _row(
        "S2D_HIGHPASS_WEIGHT",
        unit="gain",
        sets="in-focus high-pass structure added to DM in a synthesized 2-D image",
        target="chosen: a synthesized 2-D image keeps DM's texture (beta within two "
        "between-women standard deviations, 2 x 0.23, of DM's) with sharper in-focus detail",
        source="Chen, Abbey & Boone 2012 (spread of DM beta)",
        check="beta_check",
    ),
    _row(
        "S2D_HIGHPASS_SIGMA_MM",
        unit="mm",
        sets="scale of the s2D high-pass structure",
        target="chosen (with S2D_HIGHPASS_WEIGHT)",
        check="beta_check",
    ),
    _row(
        "N0_PHOTONS",
        unit="photons / 0.1 mm pixel",
        sets="quantum noise (1.6 % at the median breast pixel at dose 1)",
        target="with the mass attenuation: DM mass AUC 0.85-0.92 (VICTRE DM 0.90)",
        source=_VICTRE,
        check="observer_check, noise_check",
    ),
    _row(
        "ELECTRONIC_NOISE",
        unit="fraction of N0",
        sets="signal-independent detector noise (the intercept of variance vs mean)",
        target="chosen: small against quantum noise, so raw variance is linear in the mean",
        check="noise_check",
    ),
    _row(
        "SCATTER_FRACTION",
        unit="ratio",
        sets="scatter-to-primary ratio inside the breast (default of every site)",
        target="chosen: scatter lowers contrast; the density estimate corrects for it",
        check="density_check",
    ),
    _row(
        "SCATTER_RANGE_MM",
        unit="mm",
        sets="spread of the scatter",
        target="chosen: scatter varies over centimetres",
    ),
    _row(
        "MASS_ATTENUATION_RATIO",
        unit="mu / mu_gland",
        sets="mass attenuation (raised from 1.02-1.10)",
        target="brackets invasive carcinoma's +10.9 % over fibroglandular tissue (Carroll) and lies "
        "above Johns & Yaffe's +5 % and VICTRE's mass material (+2.4 % density); raised to "
        "bring the DM mass AUC to 0.85-0.92 (VICTRE DM 0.90)",
        source=f"Carroll et al. 1994; Johns & Yaffe 1987; {_VICTRE}",
        check="observer_check",
    ),
    _row(
        "CALC_ATTENUATION_RATIO",
        unit="mu / mu_gland",
        sets="calcification attenuation",
        target="chosen: calcifications of 0.1-0.6 mm visible at 0.1 mm pixels, not at 0.3 mm",
    ),
    _row(
        "STRAND_ATTENUATION_RATIO",
        unit="mu / mu_gland",
        sets="fibrous strands of an architectural distortion",
        target="chosen: strands faintly denser than glandular tissue",
    ),
    _row(
        "DISTORTION_WARP",
        unit="fraction of radius",
        sets="pull of the tissue towards a distortion's centre",
        target="chosen: visible tethering without a central mass",
    ),
    _row(
        "ASYMMETRY_BOOST",
        unit="field sd",
        sets="local rise of the glandular envelope that draws an asymmetry",
        target="chosen: a density without convex borders, interspersed with fat (BI-RADS)",
    ),
    _row(
        "MASS_DIAMETER_MM",
        unit="median mm, log sd, min mm, max mm",
        sets="mass size distribution",
        target="VinDr-Mammo mass boxes: median about 19 mm (box side, spicules included)",
        source="Nguyen et al. 2023 (VinDr-Mammo)",
        check="cohort findings: box size by label",
    ),
    _row(
        "CALC_CLUSTER_MM",
        unit="median mm, log sd, min mm, max mm",
        sets="calcification cluster extent",
        target="VinDr-Mammo calcification boxes: median about 13 mm",
        source="Nguyen et al. 2023 (VinDr-Mammo)",
        check="cohort findings: box size by label",
    ),
    _row(
        "MASS_OCCULT_FRACTION",
        unit="fraction",
        sets="masses visible in one view only",
        target="chosen: 5-15 % of masses seen in one view",
    ),
)


def calibration_table():
    """The calibration constants as a :class:`pandas.DataFrame` (one row each), for chapter 00."""
    import pandas as pd

    rows = [
        {
            "name": c.name,
            "value": c.value,
            "unit": c.unit,
            "sets": c.sets,
            "tuned against": c.target,
            "source": c.source,
            "measured by": c.check,
        }
        for c in CALIBRATION
    ]
    return pd.DataFrame(rows).set_index("name")
