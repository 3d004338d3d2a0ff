"""Talking to a hospital's image archive: PACS nodes (AE title, host, port, optional TLS; or a DICOMweb
URL with basic or bearer authentication) kept as JSON in the user's config folder, DIMSE services
with pynetdicom (C-ECHO, C-FIND, C-GET, C-MOVE to a Storage SCP run while retrieving, C-STORE),
DICOMweb with dicomweb-client (QIDO-RS, WADO-RS, STOW-RS), the retrieve cache (a size-limited LRU
folder a series enters only when complete) and the review report as an Encapsulated PDF to send.
Every call takes progress and cancel and raises ``NodeError`` naming the node and the problem.
Qt-free; it imports core and formats, nothing above."""
