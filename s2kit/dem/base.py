"""Constants and the error of :mod:`s2kit.dem`."""

from __future__ import annotations

from ..errors import S2kitError

#: DEM_Reference in the comment of Sen2Cor 2.9.0's pristine L2A_GIPP.xml (s2kit/templates/gipp/2.9)
CGIAR_SRTM_URL = "http://srtm.csi.cgiar.org/wp-content/uploads/files/srtm_5x5/TIFF/"
#: the one of Sen2Cor 2.8.0's L2A_GIPP.xml (public credentials; still accepted as --source)
CGIAR_SRTM_URL_SEN2COR_28 = "http://data_public:GDdci@data.cgiar-csi.org/srtm/tiles/GeoTIFF/"
SRTM_NODATA = -32768
DEM_JSON = "dem.json"
FORMAT_VERSION = 1
#: the reason a todo scene carries with ``sen2cor.dem = "none"`` and the provenance's ``dem.note``
#: (plan, worker; re-exported by s2kit.plan)
NO_DEM_NOTE = "no DEM: flat terrain"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so a set is byte-reproducible
_GTIFF_OPTIONS = {"compress": "deflate", "predictor": 2, "zlevel": 6, "num_threads": "ALL_CPUS"}


class DemError(S2kitError):
    """A DEM source, raster or prepared set is not what Sen2Cor needs."""
