"""Dose safety: each product's dose specification, disposition of cancelled doses, the
cold chain at receipt and the clinic's end of custody (reconstitution, administration)."""
