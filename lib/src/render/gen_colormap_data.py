# Regenerates colormap_data.cpp from matplotlib's published tables (Debian python3-matplotlib):
#   apt-get download python3-matplotlib && dpkg-deb -x python3-matplotlib_*.deb /tmp/mpl
#   /usr/bin/python3 lib/src/render/gen_colormap_data.py
import numpy as np, re, types, sys
src = open('/tmp/mpl/usr/lib/python3/dist-packages/matplotlib/_cm_listed.py').read()
src = src.replace('from .colors import ListedColormap', 'ListedColormap=lambda *a, **k: None')
ns = {}; exec(src, ns)
cm = open('/tmp/mpl/usr/lib/python3/dist-packages/matplotlib/_cm.py').read()
def grab(name):
    m = re.search(r'^%s = \((.*?)\n    \)\n' % name, cm, re.S | re.M)
    return np.array(eval('(' + m.group(1) + ')'))
def seg(name):
    m = re.search(r'^%s = (\{.*?\n    \})' % name, cm, re.S | re.M)
    return eval(m.group(1))
def from_list(cols, n=256):
    x = np.linspace(0, 1, len(cols)); xi = np.linspace(0, 1, n)
    return np.stack([np.interp(xi, x, cols[:, c]) for c in range(3)], 1)
def from_seg(d, n=256):
    xi = np.linspace(0, 1, n)
    return np.stack([np.interp(xi, [p[0] for p in d[c]], [p[1] for p in d[c]]) for c in ('red','green','blue')], 1)
maps = {
 'viridis': np.array(ns['_viridis_data']), 'magma': np.array(ns['_magma_data']),
 'inferno': np.array(ns['_inferno_data']), 'cividis': np.array(ns['_cividis_data']),
 'plasma': np.array(ns['_plasma_data']),
 'greys': from_list(grab('_Greys_data')), 'rdbu': from_list(grab('_RdBu_data')),
 'coolwarm': from_seg(seg('_coolwarm_data')),
}
maps['rdbu_r'] = maps['rdbu'][::-1]
out = ['// Generated from matplotlib 3.6.3 (_cm_listed.py, _cm.py; matplotlib license, BSD-compatible):',
       '// the published 256-entry tables, converted to 8-bit sRGB (round(v * 255)). LinearSegmented maps',
       '// (greys, rdbu, coolwarm) are sampled at 256 points exactly as matplotlib builds its lookup table.',
       '#include "render/colormap_data.hpp"', '', 'namespace atlas::render::detail {', '']
for name, a in maps.items():
    assert a.shape == (256, 3), (name, a.shape)
    b = np.clip(np.round(a * 255), 0, 255).astype(int)
    out.append('const uint8_t k%sData[256][3] = {' % ''.join(p.capitalize() for p in name.split('_')))
    for i in range(0, 256, 4):
        out.append('  ' + ' '.join('{%d, %d, %d},' % tuple(b[j]) for j in range(i, i + 4)))
    out.append('};')
out.append('\n}  // namespace atlas::render::detail')
open('__import__('os').path.join(__import__('os').path.dirname(__file__), 'colormap_data.cpp')', 'w').write('\n'.join(out) + '\n')
print(list(maps))
