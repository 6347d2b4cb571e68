"""How a dance is drawn: the shared stage and orbit camera, OpenCV video frames, the browser player's code.

`stage` lays dances out and projects them (numpy), `raster` draws video frames with OpenCV,
`player.js` draws the same picture in the browser (canvas 2D) from the same stage.
"""
