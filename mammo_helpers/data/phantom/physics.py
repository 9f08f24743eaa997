"""Physical constants of the phantom: linear attenuation of breast tissues at about 20 keV.

One definition, used by the generator (Beer-Lambert line integrals) and by the Volpara-like
density estimate of :mod:`mammo_helpers.data.phantom.validation` (which inverts them).
Values in 1/mm from Johns PC, Yaffe MJ. X-ray characterisation of normal and neoplastic
breast tissues. Phys Med Biol 32:675 (1987), at a mammographic effective energy of about
20 keV (fat 0.456 /cm, fibroglandular tissue 0.80 /cm). Skin and muscle are set slightly
above glandular tissue (a modelling choice, not a measured value). Used by chapter 00.
"""

from __future__ import annotations

#: Linear attenuation of adipose tissue (1/mm).
MU_FAT = 0.0456
#: Linear attenuation of fibroglandular tissue (1/mm).
MU_GLAND = 0.080
#: Linear attenuation of skin (1/mm).
MU_SKIN = 0.090
#: Linear attenuation of the pectoral muscle (1/mm).
MU_MUSCLE = 0.086


def tissue_attenuation(gland_fraction):
    """Linear attenuation (1/mm) of a fat/gland mixture with glandular share ``gland_fraction``."""
    return MU_FAT + (MU_GLAND - MU_FAT) * gland_fraction
