import sys, re, json
sys.path.insert(0,'/work/main/tests/verifier'); sys.path.insert(0,'/work/main/tests/verifier/corpus')
from dsl import *
from runner import kernel_bytes
import kernel
names = {}
allowed = {}
types = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,25,30,32]
for pt in types:
    allowed[pt] = []
    for fid in range(1, 240):
        r = kernel.load(kernel_bytes([call(fid), mov(r0, 0), exit_()]), pt, log_level=1, log_size=1<<16)
        m = re.search(r"call (\w+)#%d" % fid, r.log)
        if m and m.group(1) != 'unknown': names[fid] = m.group(1)
        if r.error and ('cannot use helper' in r.error or 'invalid func' in r.error or 'unknown func' in r.error):
            continue
        allowed[pt].append(fid)
        if pt == 1 and fid < 3: print(pt, fid, r.error)
print(len(names), max(names))
json.dump({'names': names, 'allowed': allowed}, open('/tmp/helpers.json','w'))
for pt in types: print(pt, len(allowed[pt]))
r = kernel.load(kernel_bytes([call(1000), mov(r0, 0), exit_()]), 1); print(r.error)
r = kernel.load(kernel_bytes([call(212), mov(r0, 0), exit_()]), 2); print(r.error)
